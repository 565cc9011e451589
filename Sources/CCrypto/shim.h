#ifndef DROVER_CCRYPTO_SHIM_H
#define DROVER_CCRYPTO_SHIM_H

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

/* RSA keys for SSH authentication with SHA-2 signatures (rsa-sha2-256, rsa-sha2-512), which libssh2 1.10
 * cannot make from a key file itself. Macros and error queues stay on this side. */

/* A PEM passphrase callback that never prompts: the passphrase given (u), or a failure when there is none. */
static inline int drover_pem_passphrase(char *buffer, int size, int rwflag, void *u) {
    (void)rwflag;
    if (u == NULL) return -1;
    size_t length = strlen((const char *)u);
    if (length > (size_t)size) return -1;
    memcpy(buffer, u, length);
    return (int)length;
}

/* A private key from PEM text (PKCS#1 or PKCS#8, encrypted or not); NULL when it cannot be read. */
static inline EVP_PKEY *drover_private_key_from_pem(const char *text, int length, const char *passphrase) {
    BIO *bio = BIO_new_mem_buf(text, length);
    if (bio == NULL) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, drover_pem_passphrase, (void *)passphrase);
    BIO_free(bio);
    ERR_clear_error();
    return key;
}

/* 1 for an RSA key. */
static inline int drover_private_key_is_rsa(const EVP_PKEY *key) {
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
}

/* An RSA private key from the fields of an OpenSSH-format key file (big-endian n, e, d, iqmp, p, q); the
 * CRT exponents are computed. NULL when they do not make a key. */
static inline EVP_PKEY *drover_rsa_from_openssh(const unsigned char *n, size_t n_length, const unsigned char *e,
                                                size_t e_length, const unsigned char *d, size_t d_length,
                                                const unsigned char *iqmp, size_t iqmp_length,
                                                const unsigned char *p, size_t p_length, const unsigned char *q,
                                                size_t q_length) {
    EVP_PKEY *key = NULL;
    if (n_length > INT_MAX || e_length > INT_MAX || d_length > INT_MAX || iqmp_length > INT_MAX ||
        p_length > INT_MAX || q_length > INT_MAX)
        return NULL;
    BN_CTX *context = BN_CTX_new();
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_length, NULL), *bn_e = BN_bin2bn(e, (int)e_length, NULL);
    BIGNUM *bn_d = BN_bin2bn(d, (int)d_length, NULL), *bn_iqmp = BN_bin2bn(iqmp, (int)iqmp_length, NULL);
    BIGNUM *bn_p = BN_bin2bn(p, (int)p_length, NULL), *bn_q = BN_bin2bn(q, (int)q_length, NULL);
    BIGNUM *p1 = BN_new(), *q1 = BN_new(), *dmp1 = BN_new(), *dmq1 = BN_new();
    OSSL_PARAM_BLD *builder = OSSL_PARAM_BLD_new();
    OSSL_PARAM *parameters = NULL;
    EVP_PKEY_CTX *key_context = NULL;
    if (context == NULL || bn_n == NULL || bn_e == NULL || bn_d == NULL || bn_iqmp == NULL || bn_p == NULL ||
        bn_q == NULL || p1 == NULL || q1 == NULL || dmp1 == NULL || dmq1 == NULL || builder == NULL)
        goto done;
    if (!BN_sub(p1, bn_p, BN_value_one()) || !BN_sub(q1, bn_q, BN_value_one()) ||
        !BN_mod(dmp1, bn_d, p1, context) || !BN_mod(dmq1, bn_d, q1, context))
        goto done;
    if (!OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_D, bn_d) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_FACTOR1, bn_p) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_FACTOR2, bn_q) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, bn_iqmp))
        goto done;
    parameters = OSSL_PARAM_BLD_to_param(builder);
    key_context = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (parameters == NULL || key_context == NULL || EVP_PKEY_fromdata_init(key_context) <= 0 ||
        EVP_PKEY_fromdata(key_context, &key, EVP_PKEY_KEYPAIR, parameters) <= 0)
        key = NULL;
done:
    EVP_PKEY_CTX_free(key_context);
    OSSL_PARAM_free(parameters);
    OSSL_PARAM_BLD_free(builder);
    BN_free(bn_n);
    BN_free(bn_e);
    BN_clear_free(bn_d);
    BN_clear_free(bn_iqmp);
    BN_clear_free(bn_p);
    BN_clear_free(bn_q);
    BN_clear_free(p1);
    BN_clear_free(q1);
    BN_clear_free(dmp1);
    BN_clear_free(dmq1);
    BN_CTX_free(context);
    ERR_clear_error();
    return key;
}

/* The big-endian bytes of an RSA key's public parameter ("n" or "e") in memory from malloc; the length, or -1. */
static inline int drover_rsa_public_parameter(const EVP_PKEY *key, const char *name, unsigned char **out) {
    BIGNUM *value = NULL;
    *out = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &value) != 1) {
        ERR_clear_error();
        return -1;
    }
    int length = BN_num_bytes(value);
    *out = malloc(length > 0 ? (size_t)length : 1);
    if (*out == NULL) {
        BN_free(value);
        return -1;
    }
    BN_bn2bin(value, *out);
    BN_free(value);
    return length;
}

/* The RSASSA-PKCS1-v1_5 signature of data with SHA-256 (bits 256) or SHA-512 (bits 512), in memory from
 * malloc (which libssh2 frees); 0 on success. */
static inline int drover_rsa_sign(EVP_PKEY *key, int bits, const unsigned char *data, size_t length,
                                  unsigned char **signature, size_t *signature_length) {
    const EVP_MD *digest = bits == 512 ? EVP_sha512() : EVP_sha256();
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    unsigned char *out = NULL;
    size_t size = 0;
    int result = -1;
    if (context != NULL && EVP_DigestSignInit(context, NULL, digest, NULL, key) == 1 &&
        EVP_DigestSign(context, NULL, &size, data, length) == 1 && size > 0 && (out = malloc(size)) != NULL &&
        EVP_DigestSign(context, out, &size, data, length) == 1) {
        *signature = out;
        *signature_length = size;
        out = NULL;
        result = 0;
    }
    free(out);
    EVP_MD_CTX_free(context);
    ERR_clear_error();
    return result;
}

#endif
