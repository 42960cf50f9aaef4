/* store_digest.c - sha256 digests and OCI chain IDs for the image store. */
#include "image/store_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

bool store_hex_valid(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

bool store_digest_valid(const char *digest)
{
  return digest && strlen(digest) == STORE_DIGEST_LEN && strncmp(digest, "sha256:", 7) == 0 &&
         store_hex_valid(digest + 7, STORE_HEX_LEN);
}

const char *store_digest_hex(const char *digest)
{
  return digest + 7;
}

static void hex_encode(const unsigned char *raw, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[raw[i] >> 4];
    out[2 * i + 1] = digits[raw[i] & 0xf];
  }
  out[2 * n] = '\0';
}

/* Two chunks so the chain ID needs no concatenated copy. Out of memory inside OpenSSL
 * aborts, as xmalloc does: a digest of bytes in memory has no other way to fail. */
static void sha256_parts(const void *a, size_t alen, const void *b, size_t blen,
                         char out[STORE_DIGEST_BUF])
{
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int rawlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(ctx, a, alen) != 1 || (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
      EVP_DigestFinal_ex(ctx, raw, &rawlen) != 1 || rawlen != STORE_HEX_LEN / 2)
    abort();
  EVP_MD_CTX_free(ctx);
  memcpy(out, "sha256:", 7);
  hex_encode(raw, rawlen, out + 7);
}

void store_sha256_digest(const void *data, size_t len, char out[STORE_DIGEST_BUF])
{
  sha256_parts(data, len, NULL, 0, out);
}

int store_chain_id(const char *parent, const char *diff_id, char out[STORE_DIGEST_BUF],
                   err_t **e)
{
  if (!store_digest_valid(diff_id))
    return err_set(e, ERR_INVALID, 0, "invalid diff ID \"%s\"", diff_id ? diff_id : "");
  if (!parent) {
    memcpy(out, diff_id, STORE_DIGEST_BUF);
    return 0;
  }
  if (!store_digest_valid(parent))
    return err_set(e, ERR_INVALID, 0, "invalid parent chain ID \"%s\"", parent);
  char joined[STORE_DIGEST_LEN + 1];
  memcpy(joined, parent, STORE_DIGEST_LEN);
  joined[STORE_DIGEST_LEN] = ' ';
  sha256_parts(joined, sizeof(joined), diff_id, STORE_DIGEST_LEN, out);
  return 0;
}
