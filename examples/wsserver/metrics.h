/* metrics.h — the /metrics page: Prometheus text exposition format 0.0.4. */
#ifndef AKWS_METRICS_H
#define AKWS_METRICS_H
#include "sync.h"
#include <stddef.h>

/* metrics_render — write the page for the shared state into out[0..cap).
 * Returns the bytes written (the page is cut short if cap is too small). */
size_t metrics_render(const akws_sync_ops *ops, akws_sync *s, int threads, char *out, size_t cap);

#endif
