import CCrypto

/// OpenSSL, initialised once per process without its exit-time clean-up.
///
/// OpenSSL 3.0 registers an `atexit` handler that frees every thread's OpenSSL state without taking a
/// lock. A thread that ends at that moment (a session thread, an idle pool thread that once hashed, a
/// URLSession thread) frees its own state too: a double free, seen as drover crashing with exit 134
/// after its work was done. A command-line tool gains nothing from freeing memory at exit, so the
/// handler is never registered. This must come before any other OpenSSL call: libssh2's initialisation
/// and ``Digest`` read it first.
let openSSLInitialised: Bool = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) == 1
