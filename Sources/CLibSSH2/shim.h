#ifndef DROVER_CLIBSSH2_SHIM_H
#define DROVER_CLIBSSH2_SHIM_H

#include <libssh2.h>
#include <libssh2_sftp.h>

/* Function-like macros of libssh2.h do not import into Swift; these wrap the ones Drover uses. */

static inline LIBSSH2_SESSION *drover_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline int drover_session_disconnect(LIBSSH2_SESSION *session, const char *description) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

static inline LIBSSH2_CHANNEL *drover_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT,
                                   NULL, 0);
}

static inline int drover_channel_exec(LIBSSH2_CHANNEL *channel, const char *command, unsigned int length) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, command, length);
}

static inline ssize_t drover_channel_read(LIBSSH2_CHANNEL *channel, int stream, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, stream, buffer, length);
}

static inline ssize_t drover_channel_write(LIBSSH2_CHANNEL *channel, const char *buffer, size_t length) {
    return libssh2_channel_write_ex(channel, 0, buffer, length);
}

static inline int drover_userauth_publickey_fromfile(LIBSSH2_SESSION *session, const char *user,
                                                     unsigned int userLength, const char *privateKey,
                                                     const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(session, user, userLength, NULL, privateKey, passphrase);
}

static inline LIBSSH2_SFTP_HANDLE *drover_sftp_open_for_write(LIBSSH2_SFTP *sftp, const char *path,
                                                             unsigned int length, long mode) {
    return libssh2_sftp_open_ex(sftp, path, length,
                                LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                                mode, LIBSSH2_SFTP_OPENFILE);
}

static inline int drover_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path, unsigned int length) {
    return libssh2_sftp_unlink_ex(sftp, path, length);
}

#endif
