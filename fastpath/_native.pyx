"""Compiled twin of ``_pure``: Standard Webhooks verification on OpenSSL's HMAC.

This module owns the signature check only. It must return what
``_pure.verify_standard`` returns for the same arguments, branch for branch, and it
must not copy the body: the MAC reads the id, the timestamp and the body in place.

The GIL is released around the HMAC only. Every buffer that OpenSSL reads then
belongs to a ``bytes`` object that this call holds a reference to, and bytes objects
cannot change, so no other thread can free or resize a buffer in the meantime.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memchr

# The source tree names this package fastpath, while the module's own name is
# hookgate.fastpath._native, so a relative cimport would look for a
# hookgate/fastpath/openssl.pxd that exists only once installed. The build runs
# from the repository root, which is on Cython's include path.
from fastpath.openssl cimport (
    CRYPTO_memcmp,
    ERR_clear_error,
    ERR_error_string_n,
    ERR_peek_last_error,
    EVP_EncodeBlock,
    EVP_MAC,
    EVP_MAC_CTX,
    EVP_MAC_CTX_dup,
    EVP_MAC_CTX_free,
    EVP_MAC_CTX_new,
    EVP_MAC_CTX_set_params,
    EVP_MAC_fetch,
    EVP_MAC_final,
    EVP_MAC_free,
    EVP_MAC_init,
    EVP_MAC_update,
    EVP_MAX_MD_SIZE,
    OSSL_DIGEST_NAME_SHA2_256,
    OSSL_MAC_NAME_HMAC,
    OSSL_MAC_PARAM_DIGEST,
    OSSL_PARAM,
    OSSL_PARAM_construct_end,
    OSSL_PARAM_construct_utf8_string,
)

# The Verdict values of hookgate.fastpath, as C constants.
cdef enum:
    OK = 0
    BAD_TIMESTAMP = 1
    STALE = 2
    NO_SIGNATURE = 3
    MISMATCH = 4

cdef enum:
    # Same bound as _pure._MAX_TIMESTAMP_DIGITS. It also keeps the parsed value far
    # below the range of long long.
    MAX_TIMESTAMP_DIGITS = 12
    # Room for the base64 of any digest plus the NUL that EVP_EncodeBlock writes.
    # EVP_MAX_MD_SIZE is 64 in OpenSSL 3.0, which encodes to 88 characters.
    MAX_ENCODED_SIZE = 2 * EVP_MAX_MD_SIZE

cdef const unsigned char *SIGNATURE_PREFIX = b"v1,"
cdef Py_ssize_t SIGNATURE_PREFIX_LENGTH = 3
cdef const unsigned char *DOT = b"."


cdef object _openssl_error(str call):
    """Build the exception for a failed OpenSSL call and clear the error queue."""
    cdef unsigned long code = ERR_peek_last_error()
    cdef char reason[256]

    if code == 0:
        detail = "OpenSSL queued no error"
    else:
        ERR_error_string_n(code, reason, sizeof(reason))
        detail = reason.decode("ascii", "replace")
    ERR_clear_error()
    return RuntimeError(
        f"{call} failed: {detail}. Set HOOKGATE_FASTPATH=python to verify with"
        " the standard library's hmac instead."
    )


cdef EVP_MAC_CTX *_new_hmac_sha256() except NULL:
    """Create the HMAC-SHA256 context that each call duplicates.

    Fetching HMAC and setting the digest go through OpenSSL's provider lookup, which
    takes locks, so this happens once at import. The context has no key, and only
    duplicates of it are keyed, so concurrent calls never share a keyed context.
    """
    cdef EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)
    cdef EVP_MAC_CTX *ctx
    cdef OSSL_PARAM params[2]

    if mac is NULL:
        raise ImportError(str(_openssl_error("EVP_MAC_fetch(HMAC)")))
    ctx = EVP_MAC_CTX_new(mac)
    # The context holds its own reference to the EVP_MAC.
    EVP_MAC_free(mac)
    if ctx is NULL:
        raise ImportError(str(_openssl_error("EVP_MAC_CTX_new")))

    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_MAC_PARAM_DIGEST, <char *>OSSL_DIGEST_NAME_SHA2_256, 0
    )
    params[1] = OSSL_PARAM_construct_end()
    if not EVP_MAC_CTX_set_params(ctx, params):
        EVP_MAC_CTX_free(ctx)
        raise ImportError(str(_openssl_error("EVP_MAC_CTX_set_params(SHA2-256)")))
    return ctx


# Lives as long as the process, because the module is never unloaded.
cdef EVP_MAC_CTX *_hmac_sha256 = _new_hmac_sha256()


cdef bint _parse_timestamp(
    const unsigned char *text, Py_ssize_t length, long long *value
) noexcept:
    # Only ASCII digits, as bytes.isdigit() in _pure: no sign, space, underscore or
    # other script's digits, all of which int() would accept.
    cdef long long result = 0
    cdef Py_ssize_t i

    if length < 1 or length > MAX_TIMESTAMP_DIGITS:
        return False
    for i in range(length):
        if text[i] < c'0' or text[i] > c'9':
            return False
        result = result * 10 + (text[i] - c'0')
    value[0] = result
    return True


cdef Py_ssize_t _next_candidate(
    const unsigned char *header,
    Py_ssize_t length,
    Py_ssize_t *position,
    Py_ssize_t *candidate_length,
) noexcept:
    """Find the next ``v1,`` token at or after ``position[0]``.

    Tokens are what ``header.split(b" ")`` returns, empty ones included, so that
    runs of spaces split exactly as in _pure. Returns the offset of the text after
    ``v1,`` and stores its length, or returns -1 when no token is left.
    ``position[0]`` moves past the token found.
    """
    cdef Py_ssize_t start = position[0]
    cdef Py_ssize_t end
    cdef const unsigned char *space

    # A header that ends in a space has one more, empty, token after it, but an
    # empty token cannot carry the prefix, so stopping at the end loses nothing.
    while start < length:
        space = <const unsigned char *>memchr(header + start, c' ', length - start)
        end = length if space is NULL else space - header
        if (
            end - start >= SIGNATURE_PREFIX_LENGTH
            and header[start] == SIGNATURE_PREFIX[0]
            and header[start + 1] == SIGNATURE_PREFIX[1]
            and header[start + 2] == SIGNATURE_PREFIX[2]
        ):
            position[0] = end + 1
            candidate_length[0] = end - start - SIGNATURE_PREFIX_LENGTH
            return start + SIGNATURE_PREFIX_LENGTH
        start = end + 1
    position[0] = length
    return -1


cdef bint _has_candidate(const unsigned char *header, Py_ssize_t length) noexcept:
    cdef Py_ssize_t position = 0
    cdef Py_ssize_t candidate_length

    return _next_candidate(header, length, &position, &candidate_length) >= 0


cdef bint _matches_any(
    const unsigned char *header,
    Py_ssize_t length,
    const unsigned char *expected,
    Py_ssize_t expected_length,
) noexcept:
    # A candidate of another length cannot match, as hmac.compare_digest in _pure
    # returns False for it, so only same-length candidates are compared.
    # NOTE: both versions compare base64 text, not decoded digests, so a signature
    # sent without its '=' padding is rejected although it decodes correctly.
    cdef Py_ssize_t position = 0
    cdef Py_ssize_t candidate_length
    cdef Py_ssize_t offset

    while True:
        offset = _next_candidate(header, length, &position, &candidate_length)
        if offset < 0:
            return False
        if candidate_length != expected_length:
            continue
        if CRYPTO_memcmp(header + offset, expected, <size_t>expected_length) == 0:
            return True


cdef int _sign_standard(
    EVP_MAC_CTX *ctx,
    const unsigned char *key,
    size_t key_length,
    const unsigned char *msg_id,
    size_t msg_id_length,
    const unsigned char *timestamp,
    size_t timestamp_length,
    const unsigned char *body,
    size_t body_length,
    unsigned char *encoded,
) noexcept nogil:
    """Write base64(HMAC(key, "{msg_id}.{timestamp}.{body}")) and NUL to ``encoded``.

    ``encoded`` must hold MAX_ENCODED_SIZE bytes. Returns the base64 length, or -1
    when an OpenSSL call fails. The reason is then on this thread's error queue.
    """
    cdef unsigned char digest[EVP_MAX_MD_SIZE]
    cdef size_t digest_length = 0

    if not EVP_MAC_init(ctx, key, key_length, NULL):
        return -1
    if not (
        EVP_MAC_update(ctx, msg_id, msg_id_length)
        and EVP_MAC_update(ctx, DOT, 1)
        and EVP_MAC_update(ctx, timestamp, timestamp_length)
        and EVP_MAC_update(ctx, DOT, 1)
        and EVP_MAC_update(ctx, body, body_length)
    ):
        return -1
    if not EVP_MAC_final(ctx, digest, &digest_length, sizeof(digest)):
        return -1
    return EVP_EncodeBlock(encoded, digest, <int>digest_length)


cdef int _require_bytes(object value, str name) except -1:
    # Same check and message as _pure._require_bytes. Of the types with a buffer,
    # bytes and its subclasses cannot change, so only they are safe to read without
    # the GIL.
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    return 0


def verify_standard(secrets, msg_id, timestamp, body, signatures, now, tolerance):
    """Verify a Standard Webhooks signature header; see ``hookgate.fastpath``.

    Raises TypeError when ``msg_id``, ``timestamp``, ``body``, ``signatures`` or a
    secret is not bytes, and RuntimeError when OpenSSL fails.
    """
    cdef const unsigned char *header
    cdef Py_ssize_t header_length
    cdef const unsigned char *msg_id_data
    cdef size_t msg_id_length
    cdef const unsigned char *timestamp_data
    cdef size_t timestamp_length
    cdef const unsigned char *body_data
    cdef size_t body_length
    cdef long long sent_at
    cdef EVP_MAC_CTX *ctx
    cdef Py_ssize_t index
    cdef const unsigned char *key_data
    cdef size_t key_length
    cdef unsigned char expected[MAX_ENCODED_SIZE]
    cdef int expected_length

    _require_bytes(msg_id, "msg_id")
    _require_bytes(timestamp, "timestamp")
    _require_bytes(body, "body")
    _require_bytes(signatures, "signatures")
    msg_id_data = <const unsigned char *>PyBytes_AS_STRING(msg_id)
    msg_id_length = <size_t>PyBytes_GET_SIZE(msg_id)
    timestamp_data = <const unsigned char *>PyBytes_AS_STRING(timestamp)
    timestamp_length = <size_t>PyBytes_GET_SIZE(timestamp)
    body_data = <const unsigned char *>PyBytes_AS_STRING(body)
    body_length = <size_t>PyBytes_GET_SIZE(body)
    header = <const unsigned char *>PyBytes_AS_STRING(signatures)
    header_length = PyBytes_GET_SIZE(signatures)

    if not _parse_timestamp(timestamp_data, <Py_ssize_t>timestamp_length, &sent_at):
        return BAD_TIMESTAMP
    # now and tolerance stay Python objects, so an int beyond 64 bits or a float
    # compares exactly as in _pure instead of overflowing.
    if abs(now - sent_at) > tolerance:
        return STALE

    if not _has_candidate(header, header_length):
        return NO_SIGNATURE

    ctx = EVP_MAC_CTX_dup(_hmac_sha256)
    if ctx is NULL:
        raise _openssl_error("EVP_MAC_CTX_dup")
    try:
        for index, secret in enumerate(secrets):
            if not isinstance(secret, bytes):
                raise TypeError(
                    f"secrets[{index}] must be bytes, got {type(secret).__name__}"
                )
            key_data = <const unsigned char *>PyBytes_AS_STRING(secret)
            key_length = <size_t>PyBytes_GET_SIZE(secret)

            with nogil:
                expected_length = _sign_standard(
                    ctx,
                    key_data,
                    key_length,
                    msg_id_data,
                    msg_id_length,
                    timestamp_data,
                    timestamp_length,
                    body_data,
                    body_length,
                    expected,
                )
            if expected_length < 0:
                raise _openssl_error("HMAC-SHA256")

            if _matches_any(header, header_length, expected, expected_length):
                return OK
    finally:
        EVP_MAC_CTX_free(ctx)
    return MISMATCH
