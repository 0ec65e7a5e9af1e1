/*
 * base64.h: RFC 4648 base64 with padding, the text form of an encoded
 * histogram in interval logs and JSON.
 */
#ifndef ECHOLOAD_BASE64_H
#define ECHOLOAD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, without the NUL. */
size_t	base64_encoded_len(size_t n);
/* Writes base64_encoded_len(n) characters and a NUL into out. */
void	base64_encode(const uint8_t *in, size_t n, char *out);
/* Bytes base64_decode may write for len characters. */
size_t	base64_decoded_max(size_t len);
/* Decodes len characters (a multiple of 4, padding only at the end);
 * returns the number of bytes written, or -1 for anything else. */
long	base64_decode(const char *in, size_t len, uint8_t *out);

#endif
