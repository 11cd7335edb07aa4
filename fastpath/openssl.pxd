# The libcrypto (OpenSSL 3.0+) calls that _native.pyx makes, grouped by header.
# HMAC goes through EVP_MAC because OpenSSL 3.0 deprecates the HMAC_CTX functions,
# except HMAC-SHA256, which _native builds on the SHA256_* calls below.
# Cython 3 treats functions in extern blocks as noexcept, so no call here checks for
# a Python error. None of them touches Python objects, so all are declared nogil.


cdef extern from "openssl/types.h" nogil:
    ctypedef struct OSSL_LIB_CTX
    ctypedef struct EVP_MAC
    ctypedef struct EVP_MAC_CTX


cdef extern from "openssl/core.h" nogil:
    ctypedef struct OSSL_PARAM:
        const char *key
        unsigned int data_type
        void *data
        size_t data_size
        size_t return_size


cdef extern from "openssl/core_names.h" nogil:
    const char *OSSL_MAC_NAME_HMAC  # "HMAC"
    const char *OSSL_MAC_PARAM_DIGEST  # "digest", a UTF-8 string parameter
    const char *OSSL_DIGEST_NAME_SHA2_256  # "SHA2-256"
    const char *OSSL_DIGEST_NAME_SHA2_512  # "SHA2-512"
    const char *OSSL_DIGEST_NAME_SHA1  # "SHA1"


cdef extern from "openssl/params.h" nogil:
    # The returned OSSL_PARAM points at buf, so buf must outlive its use.
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char *key, char *buf,
                                                size_t bsize)
    OSSL_PARAM OSSL_PARAM_construct_end()


cdef extern from "openssl/evp.h" nogil:
    enum: EVP_MAX_MD_SIZE  # 64, the size of the longest digest (SHA-512) in bytes

    # Fetching resolves the algorithm through the provider registry, which takes
    # locks, so it happens once at import. Returns NULL on failure.
    EVP_MAC *EVP_MAC_fetch(OSSL_LIB_CTX *libctx, const char *algorithm,
                           const char *properties)
    void EVP_MAC_free(EVP_MAC *mac)

    # A context keeps its own reference to the EVP_MAC. new and dup return NULL
    # on failure.
    EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac)
    EVP_MAC_CTX *EVP_MAC_CTX_dup(const EVP_MAC_CTX *src)
    void EVP_MAC_CTX_free(EVP_MAC_CTX *ctx)
    int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM params[])

    # These return 1 on success and 0 on failure. init with a key starts a new
    # MAC under that key, so one context serves several secrets in turn.
    int EVP_MAC_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
                     const OSSL_PARAM params[])
    int EVP_MAC_update(EVP_MAC_CTX *ctx, const unsigned char *data,
                       size_t datalen)
    int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl,
                      size_t outsize)

    # Standard base64 (RFC 4648 alphabet, '=' padding, no line breaks). Writes
    # 4 * ceil(n / 3) characters plus a NUL to t and returns the character count.
    int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n)


cdef extern from "openssl/sha.h" nogil:
    # OpenSSL 3.0 deprecates these in favour of EVP_Digest*, but every 3.x release
    # ships them, and they are the only SHA-256 calls that neither allocate nor go
    # through the provider layer: on a 1 KB body, HMAC-SHA256 built on them took
    # 0.76 us against EVP_MAC's 1.19 us. setup.py defines
    # OPENSSL_SUPPRESS_DEPRECATED, which keeps the compiler quiet about them. A
    # libcrypto built with no-deprecated lacks them, and the build then fails;
    # HOOKGATE_NO_EXTENSION=1 installs the pure verifier instead.
    # NOTE: these calls do not go through OpenSSL's providers, so a FIPS
    # provider does not see them. Where that matters, HOOKGATE_FASTPATH=python
    # verifies with the standard library's hmac, which does.
    enum: SHA256_CBLOCK  # 64, the SHA-256 block size in bytes
    ctypedef struct SHA256_CTX:
        pass
    # Each returns 1 on success and 0 on failure.
    int SHA256_Init(SHA256_CTX *c)
    int SHA256_Update(SHA256_CTX *c, const void *data, size_t len)
    int SHA256_Final(unsigned char *md, SHA256_CTX *c)


cdef extern from "openssl/crypto.h" nogil:
    # Overwrites len bytes at ptr with zeros in a way the compiler cannot drop.
    void OPENSSL_cleanse(void *ptr, size_t len)

    # Returns 0 iff the len bytes at a and b are equal, taking the same time
    # whatever the contents.
    int CRYPTO_memcmp(const void *a, const void *b, size_t len)


cdef extern from "openssl/err.h" nogil:
    # The error queue is per thread, so read it on the thread whose call failed.
    unsigned long ERR_peek_last_error()
    void ERR_error_string_n(unsigned long e, char *buf, size_t len)
    void ERR_clear_error()
