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
 * Not modelled: ARM/POWER ordering beyond TSO (doc/smr.md argues it),
 * batching (one grace period per batch is the same protocol), registration.
 *
 * Broken variants, to see the checker catch bugs (CTest runs them and
 * requires an error):
 *   -DBROKEN_NO_BARRIER   membarrier mode, but the writer skips M1
 *   -DBROKEN_NO_WAIT      the writer frees without waiting for readers
 *   -DBROKEN_WAIT_ZERO    the writer waits for each word to be 0 (no epoch):
 *                         safe, but grace periods can starve (progress fails)
 */
#define NR 2
#ifndef MB
#define MB 1
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

/* Does reader i still hold epoch value v anywhere? */
#define HOLDS(i, v) (loaded[i] == v || word[i] == v || (sb_full[i] && sb[i] == v))

proctype drainer(byte id) {
end:
    do
    :: atomic { sb_full[id] -> word[id] = sb[id]; sb_full[id] = false }
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
    if :: sb_full[0] -> word[0] = sb[0]; sb_full[0] = false :: else -> skip fi;
    if :: sb_full[1] -> word[1] = sb[1]; sb_full[1] = false :: else -> skip fi
}

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
        atomic { drain_all() };                                    /* M1 */
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
        (word[0] == 0 || word[0] == cur);                          /* W3 */
        (word[1] == 0 || word[1] == cur);
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
        run drainer(0); run reader(0);
        run drainer(1); run reader(1);
        run writer()
    }
}

/* Grace periods keep completing: gp_done flips at every one. */
ltl gp_progress { [] (<> gp_done && <> !gp_done) }
