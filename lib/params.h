/* SPDX-License-Identifier: ISC */
/*
 * params: every parameter ternd knows, with its type and its embedded
 * default.  Where a parameter means what a Postfix parameter means it has
 * Postfix's name and default; the ones Postfix lacks are marked "tern".
 * Defaults may refer to other parameters with $name, as in main.cf.
 *
 * PARAM(id, name, type, default)
 */
PARAM(MAIL_NAME, "mail_name", PT_STR, "tern")
PARAM(MAIL_VERSION, "mail_version", PT_STR, PACKAGE_VERSION)
PARAM(SYSLOG_NAME, "syslog_name", PT_STR, "tern")
PARAM(MAILLOG_FILE, "maillog_file", PT_STR, "")
PARAM(MYHOSTNAME, "myhostname", PT_STR, "")
PARAM(MYDOMAIN, "mydomain", PT_STR, "")
PARAM(MYORIGIN, "myorigin", PT_STR, "$myhostname")
PARAM(MYDESTINATION, "mydestination", PT_LIST,
      "$myhostname, localhost.$mydomain, localhost")
PARAM(MYNETWORKS, "mynetworks", PT_LIST, "127.0.0.0/8, [::1]/128")
PARAM(MAIL_OWNER, "mail_owner", PT_STR, TERN_MAIL_OWNER)
PARAM(SETGID_GROUP, "setgid_group", PT_STR, TERN_SETGID_GROUP)
PARAM(QUEUE_DIRECTORY, "queue_directory", PT_STR, "./run/queue")
PARAM(DATA_DIRECTORY, "data_directory", PT_STR, "./run/data")
PARAM(MAIL_SPOOL_DIRECTORY, "mail_spool_directory", PT_STR, "./run/mail/")
PARAM(LOCAL_RECIPIENT_MAPS, "local_recipient_maps", PT_MAPS, "")
PARAM(RECIPIENT_DELIMITER, "recipient_delimiter", PT_STR, "")
PARAM(MESSAGE_SIZE_LIMIT, "message_size_limit", PT_SIZE, "10240000")
PARAM(HEADER_SIZE_LIMIT, "header_size_limit", PT_SIZE, "102400")
PARAM(LINE_LENGTH_LIMIT, "line_length_limit", PT_SIZE, "2048")
PARAM(SMTP_LISTEN, "smtp_listen", PT_LIST, "127.0.0.1:2525")        /* tern */
PARAM(ADMIN_LISTEN, "admin_listen", PT_LIST, "127.0.0.1:8025")      /* tern */
PARAM(SMTPD_BANNER, "smtpd_banner", PT_STR, "$myhostname ESMTP $mail_name")
PARAM(SMTPD_TIMEOUT, "smtpd_timeout", PT_TIME, "300s")
PARAM(SMTPD_RECIPIENT_LIMIT, "smtpd_recipient_limit", PT_INT, "1000")
PARAM(SMTPD_SOFT_ERROR_LIMIT, "smtpd_soft_error_limit", PT_INT, "10")
PARAM(SMTPD_HARD_ERROR_LIMIT, "smtpd_hard_error_limit", PT_INT, "20")
PARAM(SMTPD_DATA_TIMEOUT, "smtpd_data_timeout", PT_TIME, "$smtpd_timeout") /* tern */
PARAM(SMTPD_CLIENT_CONNECTION_COUNT_LIMIT,
      "smtpd_client_connection_count_limit", PT_INT, "50")
PARAM(SMTPD_CONNECTION_LIMIT, "smtpd_connection_limit", PT_INT, "20000") /* tern */
PARAM(SMTPD_TLS_CERT_FILE, "smtpd_tls_cert_file", PT_STR, "")
PARAM(SMTPD_TLS_KEY_FILE, "smtpd_tls_key_file", PT_STR, "$smtpd_tls_cert_file")
PARAM(SMTPD_TLS_SECURITY_LEVEL, "smtpd_tls_security_level", PT_STR, "")
PARAM(SMTPD_TLS_AUTH_ONLY, "smtpd_tls_auth_only", PT_BOOL, "yes")
PARAM(SMTPD_TLS_RECEIVED_HEADER, "smtpd_tls_received_header", PT_BOOL, "yes")
PARAM(SMTPD_SASL_AUTH_ENABLE, "smtpd_sasl_auth_enable", PT_BOOL, "no")
PARAM(SMTPD_SASL_TYPE, "smtpd_sasl_type", PT_STR, "passwd")
PARAM(SMTPD_SASL_PATH, "smtpd_sasl_path", PT_STR, "")
PARAM(SMTPD_SASL_FAILURE_LIMIT, "smtpd_sasl_failure_limit", PT_INT, "5") /* tern */
PARAM(SMTPD_SASL_FAILURE_WINDOW, "smtpd_sasl_failure_window", PT_TIME, "10m") /* tern */
PARAM(SMTPD_CLIENT_RESTRICTIONS, "smtpd_client_restrictions", PT_RESTRICTIONS, "")
PARAM(SMTPD_HELO_RESTRICTIONS, "smtpd_helo_restrictions", PT_RESTRICTIONS, "")
PARAM(SMTPD_SENDER_RESTRICTIONS, "smtpd_sender_restrictions", PT_RESTRICTIONS, "")
PARAM(SMTPD_RELAY_RESTRICTIONS, "smtpd_relay_restrictions", PT_RESTRICTIONS,
      "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
PARAM(SMTPD_RECIPIENT_RESTRICTIONS, "smtpd_recipient_restrictions", PT_RESTRICTIONS, "")
PARAM(DNS_SERVER, "dns_server", PT_STR, "") /* tern */
PARAM(SMTPD_IO_THREADS, "smtpd_io_threads", PT_INT, "0")            /* tern */
PARAM(CLEANUP_THREADS, "cleanup_threads", PT_INT, "2")              /* tern */
PARAM(DELIVERY_THREADS, "delivery_threads", PT_INT, "20")           /* tern */
PARAM(QUEUE_RUN_DELAY, "queue_run_delay", PT_TIME, "300s")
PARAM(MINIMAL_BACKOFF_TIME, "minimal_backoff_time", PT_TIME, "300s")
PARAM(MAXIMAL_BACKOFF_TIME, "maximal_backoff_time", PT_TIME, "4000s")
PARAM(MAXIMAL_QUEUE_LIFETIME, "maximal_queue_lifetime", PT_TIME, "5d")
PARAM(BOUNCE_QUEUE_LIFETIME, "bounce_queue_lifetime", PT_TIME, "5d")
