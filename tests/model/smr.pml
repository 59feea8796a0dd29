/* smr.pml — Promela model of atomkit's grace-period protocol (src/smr.c).
 *
 * What is modelled
 *  - Two readers (NR=2), each looping: outermost ak_read_lock (R1: load the
 *    global epoch; R2: store it into the reader's word), R3: load the
 *    published pointer and use the object, ak_read_unlock (R4: store 0).
 *    Nesting is not modelled: only the outermost lock/unlock touch shared
 *    state.
 *  - Store buffering (x86-TSO): a reader's stores go into a one-entry store
 *    buffer and reach memory later, drained by a separate process. This is
 *    the reordering (STORE word -> LOAD pointer) that the read-side fence or
 *    the writer's membarrier must forbid.
 *  - MB=1 (default): membarrier mode. Readers issue no fence. The writer's
 *    M1 (membarrier) is modelled as draining every reader's store buffer at
 *    once: the kernel runs a full barrier on every CPU running one of our
 *    threads before membarrier returns.
 *    MB=0: fallback mode. The reader's F_R fence waits until its own buffer
 *    has drained before R3; the writer's M1 is a local fence (a no-op here:
 *    the writer's own stores are not buffered in this model).
 *  - The writer: publish a fresh object (the swap), then ak_synchronize:
 *    M1, bump the epoch (never 0), wait for each reader word to be 0 or the
 *    new epoch (W3), then free the old object.
 * Checked
 *  - safety (assert in the writer's free): no reader holds, inside its read
 *    section, the object being freed. Every reader uses the object it loaded
 *    before leaving the section, so this is "no reader dereferences a
 *    reclaimed object";
 *  - progress (LTL gp_progress, weak fairness): grace periods complete
 *    infinitely often while readers keep entering and leaving sections.
 *  - QSBR (MIX=1: reader 0 uses sections, reader 1 is a QSBR thread;
 *    MIX=2: one QSBR thread, no other reader). A QSBR thread loops: online (R1, R2,
 *    F_R, then plain = 0), periods (load the pointer, use it, drop it, then
 *    ak_quiescent: Q1 load the epoch, Q2 store it if it changed, then the
 *    fence before the futex check), offline (plain = 1, a fence, R4), and
 *    read sections while offline (unfenced in membarrier mode). The writer
 *    issues membarrier only if some thread's plain flag is set (the "skipping
 *    M1" rule of src/smr.c), so MIX=2 exercises the skip. The store buffer
 *    holds one store of either the word or the plain flag.
 * Not modelled: ARM/POWER ordering beyond TSO (doc/smr.md argues it),
 * batching (one grace period per batch is the same protocol), registration,
 * nesting (a depth count, no shared access).
 *
 * Broken variants, to see the checker catch bugs (CTest runs them and
 * requires an error):
 *   -DBROKEN_NO_BARRIER   membarrier mode, but the writer skips M1
 *   -DBROKEN_NO_WAIT      the writer frees without waiting for readers
 *   -DBROKEN_WAIT_ZERO    the writer waits for each word to be 0 (no epoch):
 *                         safe, but grace periods can starve (progress fails)
 *   -DBROKEN_QSBR_SKIP    (MIX) the writer does not wait for QSBR-online
 *                         threads (plain flag 0)
 *   -DBROKEN_QSBR_EARLY   (MIX) ak_quiescent before the pointer is dropped
 *   -DBROKEN_QSBR_PLAIN   (MIX=2) offline forgets to set the plain flag: the
 *                         writer skips membarrier while the thread runs
 *                         unfenced sections (store buffering)
 */
#define NR 2
#ifndef MB
#define MB 1
#endif
#ifndef MIX
#define MIX 0
#endif
#define NOBJ 3
#define NONE 3
#define NEPOCH 4      /* epoch values 1..3 (0 = quiescent); equality only */

byte epoch = 1;
byte word[NR];        /* readers' words, as seen in memory */
byte ptr = 0;         /* the published object */
bool freed[NOBJ];     /* reclaimed (and not reallocated) */
byte held[NR];        /* object a reader loaded in its current section */
bool gp_done = false; /* toggled at each completed grace period */
byte loaded[NR];      /* epoch loaded by R1, not yet stored by R2 (0: none) */
byte sb[NR];          /* one-entry store buffer per reader */
bool sb_full[NR];
bool sb_plain[NR];    /* the buffered store is to plain[], not word[] */
bool plain[NR];       /* "may run unfenced sections" (src/smr.c), in memory */

/* Does reader i still hold epoch value v anywhere? */
#define HOLDS(i, v) (loaded[i] == v || word[i] == v || (sb_full[i] && !sb_plain[i] && sb[i] == v))

#define DRAIN(i) if :: sb_plain[i] -> plain[i] = sb[i] :: else -> word[i] = sb[i] fi; \
                 sb_full[i] = false

proctype drainer(byte id) {
end:
    do
    :: atomic { sb_full[id] -> DRAIN(id) }
    od
}

/* Buffered stores of the word and of the plain flag (TSO: one at a time). */
#define STORE_WORD(i, v)  atomic { !sb_full[i] -> sb[i] = v; sb_plain[i] = false; sb_full[i] = true }
#define STORE_PLAIN(i, v) atomic { !sb_full[i] -> sb[i] = v; sb_plain[i] = true; sb_full[i] = true }
#define FENCE(i)          !sb_full[i]

/* A QSBR thread (ak_qsbr_online / ak_quiescent / ak_qsbr_offline), with read
 * sections while offline. */
proctype qreader(byte id) {
    byte q, mine;
end:
    do
    ::
        /* ak_qsbr_online: R1, R2, F_R, then plain = 0 */
        loaded[id] = epoch;
        atomic { !sb_full[id] -> sb[id] = loaded[id]; sb_plain[id] = false;
                 sb_full[id] = true; loaded[id] = 0 };
#if MB == 0
        FENCE(id);
#endif
        STORE_PLAIN(id, 0);
        /* periods, each ended by ak_quiescent */
        do
        ::
            held[id] = ptr;
#ifndef BROKEN_QSBR_EARLY
            held[id] = NONE;  /* the pointer is dropped before the quiescent state */
#endif
            q = epoch;                                              /* Q1 */
            mine = (sb_full[id] && !sb_plain[id] -> sb[id] : word[id]);
            if
            :: q != mine -> STORE_WORD(id, q); FENCE(id)            /* Q2 */
            :: else -> skip
            fi;
#ifdef BROKEN_QSBR_EARLY
            held[id] = NONE;
#endif
        :: break
        od;
        /* ak_qsbr_offline: plain = 1, fence, then R4 */
#ifndef BROKEN_QSBR_PLAIN
        STORE_PLAIN(id, 1);
        FENCE(id);
#endif
        STORE_WORD(id, 0);
        /* read sections while offline (as reader()) */
        do
        ::
            loaded[id] = epoch;
            atomic { !sb_full[id] -> sb[id] = loaded[id]; sb_plain[id] = false;
                     sb_full[id] = true; loaded[id] = 0 };
#if MB == 0
            FENCE(id);
#endif
            held[id] = ptr;
            held[id] = NONE;
            STORE_WORD(id, 0);
        :: break
        od
    od
}

proctype reader(byte id) {
end:
    do
    ::
        loaded[id] = epoch;                                        /* R1 */
        atomic { !sb_full[id] -> sb[id] = loaded[id]; sb_full[id] = true;
                 loaded[id] = 0 };                                 /* R2 */
#if MB == 0
        !sb_full[id];         /* F_R: a full fence waits for the buffer to drain */
#endif
        held[id] = ptr;                                            /* R3 */
        /* ... the object is used here; any interleaving ... */
        held[id] = NONE;      /* last use, before the unlock */
        atomic { !sb_full[id] -> sb[id] = 0; sb_full[id] = true }  /* R4 */
    od
}

inline drain_all() {
    if :: sb_full[0] -> DRAIN(0) :: else -> skip fi;
    if :: sb_full[1] -> DRAIN(1) :: else -> skip fi
}

/* The writer waits for reader i (W3); BROKEN_QSBR_SKIP forgets QSBR-online
 * threads (plain flag 0). */
#ifdef BROKEN_QSBR_SKIP
#define W3(i) (!plain[i] || word[i] == 0 || word[i] == cur)
#else
#define W3(i) (word[i] == 0 || word[i] == cur)
#endif

proctype writer() {
    byte old, cur;
end:
    do
    ::
        atomic {              /* allocate a free object and swap it in */
            if
            :: ptr != 0 && freed[0] -> freed[0] = false; old = ptr; ptr = 0
            :: else ->
                if
                :: ptr != 1 && freed[1] -> freed[1] = false; old = ptr; ptr = 1
                :: else -> freed[2] = false; old = ptr; ptr = 2
                fi
            fi
        };
        /* ak_synchronize */
#if MB == 1 && !defined(BROKEN_NO_BARRIER)
        /* M1: F_G (the writer's stores are not buffered here), then
         * membarrier only if some thread may run unfenced sections. */
        atomic { if :: plain[0] || plain[1] -> drain_all() :: else -> skip fi };
#endif
        /* Bump, skipping 0. The real epoch has 64 (or 32) bits, so a fresh
         * value never equals one a reader still holds; the model has only
         * NEPOCH-1 values and states that as an assumption: the bump waits
         * while a reader still holds the value it would produce. (Without
         * the guard the checker finds the wrap-around case that doc/smr.md
         * lists as a limit.) */
        atomic {
            cur = epoch % (NEPOCH - 1) + 1;
            !HOLDS(0, cur) && !HOLDS(1, cur) -> epoch = cur
        };
#if defined(BROKEN_WAIT_ZERO)
        (word[0] == 0); (word[1] == 0);   /* starves: readers keep re-entering */
#elif !defined(BROKEN_NO_WAIT)
        W3(0);                                                     /* W3 */
        W3(1);
#endif
        atomic {
            assert(held[0] != old && held[1] != old);   /* safety */
            freed[old] = true;
            gp_done = !gp_done
        }
    od
}

init {
    atomic {
        freed[1] = true;
        freed[2] = true;
        held[0] = NONE;
        held[1] = NONE;
        run drainer(0);
        run drainer(1);
#if MIX == 2
        /* One QSBR thread (starting registered and offline, so plain) and
         * no other reader: the writer skips membarrier whenever it is online.
         * (Two QSBR threads take 14M states; one shows the skip.) */
        plain[1] = true;
        run qreader(1);
#elif MIX == 1
        plain[0] = true; plain[1] = true;
        run reader(0); run qreader(1);
#else
        plain[0] = true; plain[1] = true;
        run reader(0); run reader(1);
#endif
        run writer()
    }
}

/* Grace periods keep completing: gp_done flips at every one. */
ltl gp_progress { [] (<> gp_done && <> !gp_done) }
