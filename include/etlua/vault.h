/* vault.h: the PII vault's cipher (etlua.vault). AES-256-GCM through OpenSSL 3's EVP interface
 * (no crypto of our own): a random 12-byte nonce per value, a 16-byte tag appended to the
 * ciphertext, and associated data that binds a ciphertext to where it is stored (etlua uses
 * "<field>\0<masked value>", so a ciphertext moved to another field or row fails to open).
 * The C functions below are what the Lua module wraps; tests call them directly. */
#ifndef ETLUA_VAULT_H
#define ETLUA_VAULT_H

#include <stddef.h>

#define ETL_VAULT_KEY_LEN 32    /* AES-256 */
#define ETL_VAULT_NONCE_LEN 12  /* GCM's recommended IV length */
#define ETL_VAULT_TAG_LEN 16    /* full-length GCM tag */
#define ETL_VAULT_KEY_ID_HEX 16 /* key id: the first 8 bytes of SHA-256(key), lowercase hex */

/* Parses key material: exactly 32 raw bytes, or exactly 64 hex digits (either case), each
 * optionally followed by one "\n" or "\r\n". Writes the key to key[] and returns 0, or returns
 * -1 (key[] is then zeroed) when the material has any other shape. */
int etl_vault_parse_key(const char *material, size_t len, unsigned char key[ETL_VAULT_KEY_LEN]);

/* Writes the key id (16 lowercase hex chars and a NUL) to out. Returns 0, or -1 on an OpenSSL
 * failure. */
int etl_vault_key_id(const unsigned char key[ETL_VAULT_KEY_LEN],
                     char out[ETL_VAULT_KEY_ID_HEX + 1]);

/* Encrypts pt[0..ptlen) under key with associated data ad[0..adlen). Fills nonce with fresh
 * random bytes (RAND_bytes) and writes ptlen + ETL_VAULT_TAG_LEN bytes (ciphertext, then tag)
 * to out. Returns 0, or -1 on an OpenSSL failure (out is then zeroed). */
int etl_vault_seal(const unsigned char key[ETL_VAULT_KEY_LEN], const void *ad, size_t adlen,
                   const void *pt, size_t ptlen, unsigned char nonce[ETL_VAULT_NONCE_LEN],
                   unsigned char *out);

/* Decrypts and authenticates ct[0..ctlen) (ciphertext then tag) under key, nonce and ad.
 * Writes ctlen - ETL_VAULT_TAG_LEN bytes to out and returns that count; returns -1 when ctlen
 * is shorter than a tag, the tag does not verify (wrong key, tampered nonce, ciphertext, tag or
 * associated data) or OpenSSL fails. On -1, out holds zeros: never partial plaintext. */
long etl_vault_open(const unsigned char key[ETL_VAULT_KEY_LEN], const void *ad, size_t adlen,
                    const unsigned char nonce[ETL_VAULT_NONCE_LEN], const unsigned char *ct,
                    size_t ctlen, unsigned char *out);

#endif
