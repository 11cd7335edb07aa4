"""Compiled twin of ``_pure``: webhook signature verification on OpenSSL.

This module owns the signature checks only. Each function must return what its
namesake in ``_pure`` returns for the same arguments, branch for branch, and must
not copy the body: the MAC reads every signed chunk in place.

The GIL is released around the HMAC only. Every buffer that OpenSSL reads then
belongs to a ``bytes`` object that this call holds a reference to, and bytes objects
cannot change, so no other thread can free or resize a buffer in the meantime.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.string cimport memchr, memcmp, memset

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
    OSSL_DIGEST_NAME_SHA1,
    OSSL_DIGEST_NAME_SHA2_256,
    OSSL_DIGEST_NAME_SHA2_512,
    OSSL_MAC_NAME_HMAC,
    OSSL_MAC_PARAM_DIGEST,
    OSSL_PARAM,
    OSSL_PARAM_construct_end,
    OSSL_PARAM_construct_utf8_string,
    OPENSSL_cleanse,
    SHA256_CBLOCK,
    SHA256_CTX,
    SHA256_Final,
    SHA256_Init,
    SHA256_Update,
)

# The Verdict values of hookgate.fastpath, as C constants.
cdef enum:
    OK = 0
    BAD_TIMESTAMP = 1
    STALE = 2
    NO_SIGNATURE = 3
    MISMATCH = 4
    MALFORMED_SIGNATURE = 5

cdef enum:
    # Same bound as _pure._MAX_TIMESTAMP_DIGITS. It also keeps the parsed value far
    # below the range of long long.
    MAX_TIMESTAMP_DIGITS = 12
    # Room for the base64 of any digest plus the NUL that EVP_EncodeBlock writes.
    # EVP_MAX_MD_SIZE is 64 in OpenSSL 3.0, which encodes to 88 characters.
    MAX_ENCODED_SIZE = 2 * EVP_MAX_MD_SIZE
    # Digest sizes in bytes, fixed by FIPS 180-4. They are not queried, because
    # EVP_MAC_CTX_get_mac_size fails on an unkeyed HMAC context in OpenSSL 3.0.
    SHA256_SIZE = 32
    SHA512_SIZE = 64
    SHA1_SIZE = 20

cdef enum Digest:
    DIGEST_SHA256
    DIGEST_SHA512
    DIGEST_SHA1

cdef const unsigned char *SIGNATURE_PREFIX = b"v1,"
cdef Py_ssize_t SIGNATURE_PREFIX_LENGTH = 3
cdef const unsigned char *GITHUB_PREFIX = b"sha256="
cdef Py_ssize_t GITHUB_PREFIX_LENGTH = 7
cdef const unsigned char *DOT = b"."


cdef struct Span:
    # A byte range inside a buffer that the current call keeps alive.
    const unsigned char *data
    size_t length


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


cdef EVP_MAC_CTX *_new_hmac(const char *digest_name) except NULL:
    """Create the HMAC context for one digest that each call duplicates.

    Fetching HMAC and setting the digest go through OpenSSL's provider lookup, which
    takes locks, so this happens once at import. The context has no key, and only
    duplicates of it are keyed, so concurrent calls never share a keyed context.
    """
    cdef EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)
    cdef EVP_MAC_CTX *ctx
    cdef OSSL_PARAM params[2]
    cdef str digest = digest_name.decode("ascii")

    if mac is NULL:
        raise ImportError(str(_openssl_error("EVP_MAC_fetch(HMAC)")))
    ctx = EVP_MAC_CTX_new(mac)
    # The context holds its own reference to the EVP_MAC.
    EVP_MAC_free(mac)
    if ctx is NULL:
        raise ImportError(str(_openssl_error("EVP_MAC_CTX_new")))

    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_MAC_PARAM_DIGEST, <char *>digest_name, 0
    )
    params[1] = OSSL_PARAM_construct_end()
    if not EVP_MAC_CTX_set_params(ctx, params):
        EVP_MAC_CTX_free(ctx)
        raise ImportError(str(_openssl_error(f"EVP_MAC_CTX_set_params({digest})")))
    return ctx


# These live as long as the process, because the module is never unloaded.
# SHA-256 has none: _hmac_sha256 computes its HMAC without EVP_MAC.
cdef EVP_MAC_CTX *_sha512_prototype = _new_hmac(OSSL_DIGEST_NAME_SHA2_512)
cdef EVP_MAC_CTX *_sha1_prototype = _new_hmac(OSSL_DIGEST_NAME_SHA1)


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


cdef int _check_timestamp(
    const unsigned char *text, Py_ssize_t length, object now, object tolerance
) except -1:
    """Return OK, BAD_TIMESTAMP or STALE for a timestamp header value."""
    cdef long long sent_at

    if not _parse_timestamp(text, length, &sent_at):
        return BAD_TIMESTAMP
    # now and tolerance stay Python objects, so an int beyond 64 bits or a float
    # compares exactly as in _pure instead of overflowing.
    if abs(now - sent_at) > tolerance:
        return STALE
    return OK


cdef inline int _hex_value(unsigned char digit) noexcept:
    if c'0' <= digit <= c'9':
        return digit - c'0'
    if c'a' <= digit <= c'f':
        return digit - c'a' + 10
    if c'A' <= digit <= c'F':
        return digit - c'A' + 10
    return -1


cdef bint _decode_hex(
    const unsigned char *text, Py_ssize_t length, size_t size, unsigned char *out
) noexcept:
    """Decode ``size`` bytes from hex digits of either case into ``out``.

    Returns False, leaving ``out`` partly written, unless ``text`` is exactly
    ``2 * size`` hex digits, as _pure._decode_hex returns None.
    """
    cdef size_t i
    cdef int high
    cdef int low

    if length < 0 or <size_t>length != 2 * size:
        return False
    for i in range(size):
        high = _hex_value(text[2 * i])
        low = _hex_value(text[2 * i + 1])
        if high < 0 or low < 0:
            return False
        out[i] = <unsigned char>((high << 4) | low)
    return True


cdef inline bint _is_base64_character(unsigned char character) noexcept:
    return (
        c'A' <= character <= c'Z'
        or c'a' <= character <= c'z'
        or c'0' <= character <= c'9'
        or character == c'+'
        or character == c'/'
    )


cdef bint _is_base64_digest(
    const unsigned char *text, Py_ssize_t length, size_t size
) noexcept:
    """Check that ``text`` has the shape of the padded base64 of ``size`` bytes."""
    cdef Py_ssize_t padding = <Py_ssize_t>((3 - size % 3) % 3)
    cdef Py_ssize_t i

    if length != <Py_ssize_t>(4 * ((size + 2) // 3)):
        return False
    for i in range(length - padding):
        if not _is_base64_character(text[i]):
            return False
    for i in range(length - padding, length):
        if text[i] != c'=':
            return False
    return True


cdef bint _mac_chunks(
    EVP_MAC_CTX *ctx,
    const unsigned char *key,
    size_t key_length,
    const Span *chunks,
    Py_ssize_t chunk_count,
    unsigned char *digest,
    size_t *digest_length,
) noexcept nogil:
    """Write the HMAC of the chunks, read in order without joining, to ``digest``.

    ``digest`` must hold EVP_MAX_MD_SIZE bytes. Returns False when an OpenSSL call
    fails. The reason is then on this thread's error queue.
    """
    cdef Py_ssize_t i

    if not EVP_MAC_init(ctx, key, key_length, NULL):
        return False
    for i in range(chunk_count):
        if not EVP_MAC_update(ctx, chunks[i].data, chunks[i].length):
            return False
    return EVP_MAC_final(ctx, digest, digest_length, EVP_MAX_MD_SIZE) == 1


cdef bint _hmac_sha256(
    const unsigned char *key,
    size_t key_length,
    const Span *chunks,
    Py_ssize_t chunk_count,
    unsigned char *digest,
) noexcept nogil:
    """Write the HMAC-SHA256 (RFC 2104) of the chunks, read in order, to ``digest``.

    This does what _mac_chunks does for SHA-256, without EVP_MAC's allocations and
    provider dispatch, which cost more than the hashing of a 1 KB body. ``digest``
    must hold SHA256_SIZE bytes. Returns False when an OpenSSL call fails.
    """
    cdef SHA256_CTX ctx
    cdef unsigned char pad[SHA256_CBLOCK]
    cdef unsigned char hashed_key[SHA256_SIZE]
    cdef size_t i
    cdef Py_ssize_t chunk
    cdef bint ok = True

    if key_length > SHA256_CBLOCK:
        ok = (
            SHA256_Init(&ctx) == 1
            and SHA256_Update(&ctx, key, key_length) == 1
            and SHA256_Final(hashed_key, &ctx) == 1
        )
        key = hashed_key
        key_length = SHA256_SIZE

    memset(pad, 0x36, SHA256_CBLOCK)
    for i in range(key_length):
        pad[i] ^= key[i]
    ok = ok and SHA256_Init(&ctx) == 1 and SHA256_Update(&ctx, pad, SHA256_CBLOCK) == 1
    for chunk in range(chunk_count):
        ok = ok and SHA256_Update(&ctx, chunks[chunk].data, chunks[chunk].length) == 1
    ok = ok and SHA256_Final(digest, &ctx) == 1

    # Turns each 0x36 ^ key byte into 0x5c ^ key byte.
    for i in range(SHA256_CBLOCK):
        pad[i] ^= 0x36 ^ 0x5c
    ok = (
        ok
        and SHA256_Init(&ctx) == 1
        and SHA256_Update(&ctx, pad, SHA256_CBLOCK) == 1
        and SHA256_Update(&ctx, digest, SHA256_SIZE) == 1
        and SHA256_Final(digest, &ctx) == 1
    )

    # The pads and the hash state hold what a forger needs, as the key does, so
    # none of it stays on the stack.
    OPENSSL_cleanse(pad, SHA256_CBLOCK)
    OPENSSL_cleanse(hashed_key, SHA256_SIZE)
    OPENSSL_cleanse(&ctx, sizeof(SHA256_CTX))
    return ok


cdef int _require_bytes(object value, str name) except -1:
    # Same check and message as _pure._require_bytes. Of the types with a buffer,
    # bytes and its subclasses cannot change, so only they are safe to read without
    # the GIL.
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    return 0


cdef int _require_secret(object secret, Py_ssize_t index) except -1:
    if not isinstance(secret, bytes):
        raise TypeError(f"secrets[{index}] must be bytes, got {type(secret).__name__}")
    return 0


cdef tuple _require_bytes_items(object values, str name):
    # A tuple, as in _pure, and one that also keeps every item alive while the
    # GIL is released.
    cdef tuple items = tuple(values)

    for index, item in enumerate(items):
        if not isinstance(item, bytes):
            raise TypeError(
                f"{name}[{index}] must be bytes, got {type(item).__name__}"
            )
    return items


cdef void *_allocate(Py_ssize_t count, size_t size) except NULL:
    # PyMem_Calloc checks count * size for overflow. One element at least, because
    # a request for zero bytes may return NULL.
    cdef void *memory = PyMem_Calloc(<size_t>max(count, 1), size)

    if memory is NULL:
        raise MemoryError()
    return memory


cdef int _match_secrets(
    object secrets,
    Digest algorithm,
    const Span *chunks,
    Py_ssize_t chunk_count,
    const Span *candidates,
    Py_ssize_t candidate_count,
    bint base64,
) except -1:
    """Return OK when the MAC of the chunks under a secret equals a candidate.

    Candidates are raw digests, or base64 text when ``base64`` is true, as in
    _pure._match_secrets. Returns MISMATCH otherwise. Raises TypeError for a secret
    that is not bytes, and RuntimeError when OpenSSL fails.
    """
    cdef EVP_MAC_CTX *ctx = NULL
    cdef const unsigned char *key_data
    cdef size_t key_length
    cdef unsigned char digest[EVP_MAX_MD_SIZE]
    cdef size_t digest_length = 0
    cdef unsigned char encoded[MAX_ENCODED_SIZE]
    cdef const unsigned char *expected
    cdef size_t expected_length
    cdef bint signed
    cdef Py_ssize_t i

    if algorithm != DIGEST_SHA256:
        ctx = EVP_MAC_CTX_dup(
            _sha512_prototype if algorithm == DIGEST_SHA512 else _sha1_prototype
        )
        if ctx is NULL:
            raise _openssl_error("EVP_MAC_CTX_dup")
    try:
        for index, secret in enumerate(secrets):
            _require_secret(secret, index)
            key_data = <const unsigned char *>PyBytes_AS_STRING(secret)
            key_length = <size_t>PyBytes_GET_SIZE(secret)

            with nogil:
                if ctx is NULL:
                    signed = _hmac_sha256(
                        key_data, key_length, chunks, chunk_count, digest
                    )
                    digest_length = SHA256_SIZE
                else:
                    signed = _mac_chunks(
                        ctx,
                        key_data,
                        key_length,
                        chunks,
                        chunk_count,
                        digest,
                        &digest_length,
                    )
            if not signed:
                raise _openssl_error(f"HMAC-{_DIGEST_NAMES[algorithm]}")

            if base64:
                expected_length = <size_t>EVP_EncodeBlock(
                    encoded, digest, <int>digest_length
                )
                expected = encoded
            else:
                expected_length = digest_length
                expected = digest
            # hmac.compare_digest in _pure returns False for another length.
            for i in range(candidate_count):
                if candidates[i].length != expected_length:
                    continue
                if CRYPTO_memcmp(candidates[i].data, expected, expected_length) == 0:
                    return OK
    finally:
        # Freeing NULL does nothing.
        EVP_MAC_CTX_free(ctx)
    return MISMATCH


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


cdef Py_ssize_t _next_field(
    const unsigned char *header,
    Py_ssize_t length,
    Py_ssize_t *position,
    Py_ssize_t *key_length,
    Py_ssize_t *value_length,
) noexcept:
    """Find the next comma-separated field of a Stripe-Signature header.

    Fields are what ``header.split(b",")`` returns in _pure, and each splits at its
    first '=' as ``partition(b"=")`` does. Returns the field's offset and stores the
    lengths of its key and of its value, which starts one byte after the key. Returns
    -1 when no field is left. ``position[0]`` moves past the field found.
    """
    cdef Py_ssize_t start = position[0]
    cdef Py_ssize_t end
    cdef const unsigned char *found

    # An empty header, or one that ends in a comma, has one more, empty, field, but
    # verify_stripe ignores a field with an empty key, so stopping loses nothing.
    if start >= length:
        return -1
    found = <const unsigned char *>memchr(header + start, c',', length - start)
    end = length if found is NULL else found - header

    found = <const unsigned char *>memchr(header + start, c'=', end - start)
    if found is NULL:
        key_length[0] = end - start
        value_length[0] = 0
    else:
        key_length[0] = found - header - start
        value_length[0] = end - start - key_length[0] - 1
    position[0] = end + 1
    return start


cdef tuple _DIGEST_NAMES = ("SHA256", "SHA512", "SHA1")


cdef Digest _digest_for(object algorithm, size_t *size) except *:
    """Return the digest verify_hmac names by ``algorithm`` and store its size."""
    if algorithm == "sha256":
        size[0] = SHA256_SIZE
        return DIGEST_SHA256
    if algorithm == "sha512":
        size[0] = SHA512_SIZE
        return DIGEST_SHA512
    if algorithm == "sha1":
        size[0] = SHA1_SIZE
        return DIGEST_SHA1
    raise ValueError(
        f"algorithm must be 'sha256', 'sha512' or 'sha1', got {algorithm!r}"
    )


def verify_standard(secrets, msg_id, timestamp, body, signatures, now, tolerance):
    """Verify a Standard Webhooks signature header; see ``hookgate.fastpath``.

    Raises TypeError when ``msg_id``, ``timestamp``, ``body``, ``signatures`` or a
    secret is not bytes, and RuntimeError when OpenSSL fails.
    """
    cdef const unsigned char *header
    cdef Py_ssize_t header_length
    cdef Span content[5]
    cdef int verdict
    cdef const unsigned char *key_data
    cdef size_t key_length
    cdef unsigned char digest[SHA256_SIZE]
    cdef bint signed
    cdef unsigned char expected[MAX_ENCODED_SIZE]
    cdef int expected_length

    _require_bytes(msg_id, "msg_id")
    _require_bytes(timestamp, "timestamp")
    _require_bytes(body, "body")
    _require_bytes(signatures, "signatures")
    # The signed content is "{msg_id}.{timestamp}.{body}".
    content[0].data = <const unsigned char *>PyBytes_AS_STRING(msg_id)
    content[0].length = <size_t>PyBytes_GET_SIZE(msg_id)
    content[1].data = DOT
    content[1].length = 1
    content[2].data = <const unsigned char *>PyBytes_AS_STRING(timestamp)
    content[2].length = <size_t>PyBytes_GET_SIZE(timestamp)
    content[3].data = DOT
    content[3].length = 1
    content[4].data = <const unsigned char *>PyBytes_AS_STRING(body)
    content[4].length = <size_t>PyBytes_GET_SIZE(body)
    header = <const unsigned char *>PyBytes_AS_STRING(signatures)
    header_length = PyBytes_GET_SIZE(signatures)

    verdict = _check_timestamp(
        content[2].data, <Py_ssize_t>content[2].length, now, tolerance
    )
    if verdict != OK:
        return verdict

    if not _has_candidate(header, header_length):
        return NO_SIGNATURE

    # Unlike the other schemes, candidates stay in the header and are scanned again
    # for each secret, so this needs no allocation for them.
    for index, secret in enumerate(secrets):
        _require_secret(secret, index)
        key_data = <const unsigned char *>PyBytes_AS_STRING(secret)
        key_length = <size_t>PyBytes_GET_SIZE(secret)

        with nogil:
            signed = _hmac_sha256(key_data, key_length, content, 5, digest)
        if not signed:
            raise _openssl_error("HMAC-SHA256")
        expected_length = EVP_EncodeBlock(expected, digest, SHA256_SIZE)

        if _matches_any(header, header_length, expected, expected_length):
            return OK
    return MISMATCH


def verify_github(secrets, body, header):
    """Verify a GitHub ``X-Hub-Signature-256`` header; see ``hookgate.fastpath``.

    Raises TypeError when ``body``, ``header`` or a secret is not bytes, and
    RuntimeError when OpenSSL fails.
    """
    cdef const unsigned char *data
    cdef Py_ssize_t length
    cdef unsigned char decoded[EVP_MAX_MD_SIZE]
    cdef Span candidate
    cdef Span content

    _require_bytes(body, "body")
    _require_bytes(header, "header")
    data = <const unsigned char *>PyBytes_AS_STRING(header)
    length = PyBytes_GET_SIZE(header)

    if length == 0:
        return NO_SIGNATURE
    if (
        length < GITHUB_PREFIX_LENGTH
        or memcmp(data, GITHUB_PREFIX, GITHUB_PREFIX_LENGTH) != 0
    ):
        return MALFORMED_SIGNATURE
    if not _decode_hex(
        data + GITHUB_PREFIX_LENGTH,
        length - GITHUB_PREFIX_LENGTH,
        SHA256_SIZE,
        decoded,
    ):
        return MALFORMED_SIGNATURE

    candidate.data = decoded
    candidate.length = SHA256_SIZE
    content.data = <const unsigned char *>PyBytes_AS_STRING(body)
    content.length = <size_t>PyBytes_GET_SIZE(body)
    return _match_secrets(
        secrets, DIGEST_SHA256, &content, 1, &candidate, 1, False
    )


def verify_stripe(secrets, body, header, now, tolerance):
    """Verify a ``Stripe-Signature`` header; see ``hookgate.fastpath``.

    Raises TypeError when ``body``, ``header`` or a secret is not bytes, and
    RuntimeError when OpenSSL fails.
    """
    cdef const unsigned char *data
    cdef Py_ssize_t length
    cdef Py_ssize_t position = 0
    cdef Py_ssize_t start
    cdef Py_ssize_t key_length
    cdef Py_ssize_t value_length
    cdef Py_ssize_t timestamp_count = 0
    cdef Py_ssize_t timestamp_offset = 0
    cdef Py_ssize_t timestamp_length = 0
    cdef Py_ssize_t signature_count = 0
    cdef Py_ssize_t candidate_count = 0
    cdef int verdict
    cdef Span *candidates = NULL
    cdef unsigned char *decoded = NULL
    cdef unsigned char *slot
    cdef Span content[3]

    _require_bytes(body, "body")
    _require_bytes(header, "header")
    data = <const unsigned char *>PyBytes_AS_STRING(header)
    length = PyBytes_GET_SIZE(header)

    while True:
        start = _next_field(data, length, &position, &key_length, &value_length)
        if start < 0:
            break
        if key_length == 1 and data[start] == c't':
            timestamp_count += 1
            timestamp_offset = start + 2
            timestamp_length = value_length
        elif key_length == 2 and data[start] == c'v' and data[start + 1] == c'1':
            signature_count += 1

    # Two t fields would leave the signed timestamp ambiguous, so both are rejected
    # instead of picking one.
    if timestamp_count != 1:
        return BAD_TIMESTAMP
    verdict = _check_timestamp(data + timestamp_offset, timestamp_length, now, tolerance)
    if verdict != OK:
        return verdict

    if signature_count == 0:
        return NO_SIGNATURE
    try:
        candidates = <Span *>_allocate(signature_count, sizeof(Span))
        decoded = <unsigned char *>_allocate(signature_count, SHA256_SIZE)
        position = 0
        while True:
            start = _next_field(data, length, &position, &key_length, &value_length)
            if start < 0:
                break
            if not (key_length == 2 and data[start] == c'v' and data[start + 1] == c'1'):
                continue
            slot = decoded + candidate_count * SHA256_SIZE
            if _decode_hex(data + start + 3, value_length, SHA256_SIZE, slot):
                candidates[candidate_count].data = slot
                candidates[candidate_count].length = SHA256_SIZE
                candidate_count += 1
        if candidate_count == 0:
            return MALFORMED_SIGNATURE

        # The signed content is "{t}.{body}", with t's bytes as sent.
        content[0].data = data + timestamp_offset
        content[0].length = <size_t>timestamp_length
        content[1].data = DOT
        content[1].length = 1
        content[2].data = <const unsigned char *>PyBytes_AS_STRING(body)
        content[2].length = <size_t>PyBytes_GET_SIZE(body)
        return _match_secrets(
            secrets, DIGEST_SHA256, content, 3, candidates, candidate_count, False
        )
    finally:
        PyMem_Free(candidates)
        PyMem_Free(decoded)


def verify_hmac(secrets, algorithm, chunks, signatures, encoding):
    """Verify an HMAC over ``chunks`` against candidates; see ``hookgate.fastpath``.

    Raises ValueError for an unknown ``algorithm`` or ``encoding``, TypeError when a
    chunk, a signature or a secret is not bytes, and RuntimeError when OpenSSL fails.
    """
    cdef Digest digest
    cdef size_t size = 0
    cdef bint base64
    cdef tuple chunk_items
    cdef tuple signature_items
    cdef Py_ssize_t chunk_count
    cdef Py_ssize_t signature_count
    cdef Py_ssize_t candidate_count = 0
    cdef Py_ssize_t i
    cdef Span *content = NULL
    cdef Span *candidates = NULL
    cdef unsigned char *decoded = NULL
    cdef unsigned char *slot
    cdef const unsigned char *text
    cdef Py_ssize_t text_length

    digest = _digest_for(algorithm, &size)
    if encoding == "hex":
        base64 = False
    elif encoding == "base64":
        base64 = True
    else:
        raise ValueError(f"encoding must be 'hex' or 'base64', got {encoding!r}")
    chunk_items = _require_bytes_items(chunks, "chunks")
    signature_items = _require_bytes_items(signatures, "signatures")

    signature_count = len(signature_items)
    if signature_count == 0:
        return NO_SIGNATURE
    chunk_count = len(chunk_items)
    try:
        candidates = <Span *>_allocate(signature_count, sizeof(Span))
        if not base64:
            decoded = <unsigned char *>_allocate(signature_count, size)
        for i in range(signature_count):
            signature = signature_items[i]
            text = <const unsigned char *>PyBytes_AS_STRING(signature)
            text_length = PyBytes_GET_SIZE(signature)
            if base64:
                if _is_base64_digest(text, text_length, size):
                    candidates[candidate_count].data = text
                    candidates[candidate_count].length = <size_t>text_length
                    candidate_count += 1
            else:
                slot = decoded + candidate_count * size
                if _decode_hex(text, text_length, size, slot):
                    candidates[candidate_count].data = slot
                    candidates[candidate_count].length = size
                    candidate_count += 1
        if candidate_count == 0:
            return MALFORMED_SIGNATURE

        content = <Span *>_allocate(chunk_count, sizeof(Span))
        for i in range(chunk_count):
            chunk = chunk_items[i]
            content[i].data = <const unsigned char *>PyBytes_AS_STRING(chunk)
            content[i].length = <size_t>PyBytes_GET_SIZE(chunk)
        return _match_secrets(
            secrets,
            digest,
            content,
            chunk_count,
            candidates,
            candidate_count,
            base64,
        )
    finally:
        PyMem_Free(content)
        PyMem_Free(candidates)
        PyMem_Free(decoded)
