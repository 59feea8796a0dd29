/* sha1.h — SHA-1 (FIPS 180-4) and base64 (RFC 4648), just enough for the
 * WebSocket handshake: Sec-WebSocket-Accept = base64(SHA-1(key + GUID)).
 * SHA-1 is used here as RFC 6455 requires, not for security. */
#ifndef AKWS_SHA1_H
#define AKWS_SHA1_H
#include <stddef.h>
#include <stdint.h>

/* sha1 — digest of data[0..len) into out[20]. No allocation. */
void sha1(const void *data, size_t len, uint8_t out[20]);

/* base64_encode — standard alphabet with '=' padding; writes
 * 4*ceil(len/3) characters and a NUL to out (caller sizes it).
 * Returns the number of characters written (without the NUL). */
size_t base64_encode(const uint8_t *in, size_t len, char *out);

/* base64_decoded_len — the byte count a valid, padded base64 string of
 * `len` characters decodes to, or -1 if it is not valid base64. */
long base64_decoded_len(const char *s, size_t len);

#endif
