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
/* The address classes, as Postfix has them: the domains delivered here
 * (mydestination), aliased to other addresses (virtual_alias_domains),
 * kept in virtual mailboxes (virtual_mailbox_domains), or relayed to
 * another host that is their destination (relay_domains).  SMTP clients
 * from anywhere may send to all four; smtpd_reject_unlisted_recipient
 * refuses recipients that the class's tables do not know. */
PARAM(MYDESTINATION, "mydestination", PT_DOMAINS,
      "$myhostname, localhost.$mydomain, localhost")
PARAM(RELAY_DOMAINS, "relay_domains", PT_DOMAINS, "")
PARAM(RELAY_RECIPIENT_MAPS, "relay_recipient_maps", PT_MAPS, "")
PARAM(RELAY_TRANSPORT, "relay_transport", PT_STR, "relay")
PARAM(SMTPD_REJECT_UNLISTED_RECIPIENT, "smtpd_reject_unlisted_recipient",
      PT_BOOL, "yes")
PARAM(MYNETWORKS, "mynetworks", PT_LIST, "127.0.0.0/8, [::1]/128")
PARAM(MAIL_OWNER, "mail_owner", PT_STR, TERN_MAIL_OWNER)
PARAM(SETGID_GROUP, "setgid_group", PT_STR, TERN_SETGID_GROUP)
PARAM(QUEUE_DIRECTORY, "queue_directory", PT_STR, "./run/queue")
PARAM(DATA_DIRECTORY, "data_directory", PT_STR, "./run/data")
PARAM(MAIL_SPOOL_DIRECTORY, "mail_spool_directory", PT_STR, "./run/mail/")
PARAM(LOCAL_RECIPIENT_MAPS, "local_recipient_maps", PT_MAPS, "")
/* Alias files in aliases(5) form, read into memory at start and reload.
 * Postfix's default is hash:/etc/aliases; tern's is empty, so that a
 * private instance reads nothing of the host's. */
PARAM(ALIAS_DATABASE, "alias_database", PT_LIST, "")
PARAM(ALIAS_MAPS, "alias_maps", PT_LIST, "$alias_database")
PARAM(RECIPIENT_DELIMITER, "recipient_delimiter", PT_STR, "")
PARAM(MESSAGE_SIZE_LIMIT, "message_size_limit", PT_SIZE, "10240000")
PARAM(QUEUE_MINFREE, "queue_minfree", PT_SIZE, "0")
PARAM(HEADER_SIZE_LIMIT, "header_size_limit", PT_SIZE, "102400")
PARAM(LINE_LENGTH_LIMIT, "line_length_limit", PT_SIZE, "2048")
/* Cleanup: content checks (header_checks(5)) and address rewriting
 * (canonical(5), virtual(5), masquerading), with Postfix's names and
 * defaults except virtual_alias_maps, whose legacy $virtual_maps
 * default tern does not have. */
PARAM(HEADER_CHECKS, "header_checks", PT_MAPS, "")
PARAM(MIME_HEADER_CHECKS, "mime_header_checks", PT_MAPS, "$header_checks")
PARAM(NESTED_HEADER_CHECKS, "nested_header_checks", PT_MAPS,
      "$header_checks")
PARAM(DISABLE_MIME_INPUT_PROCESSING, "disable_mime_input_processing", PT_BOOL,
      "no")
PARAM(MIME_NESTING_LIMIT, "mime_nesting_limit", PT_INT, "100")
PARAM(BODY_CHECKS, "body_checks", PT_MAPS, "")
PARAM(BODY_CHECKS_SIZE_LIMIT, "body_checks_size_limit", PT_SIZE, "51200")
PARAM(MESSAGE_DROP_HEADERS, "message_drop_headers", PT_LIST,
      "bcc, content-length, resent-bcc, return-path")
PARAM(CANONICAL_MAPS, "canonical_maps", PT_MAPS, "")
PARAM(SENDER_CANONICAL_MAPS, "sender_canonical_maps", PT_MAPS, "")
PARAM(RECIPIENT_CANONICAL_MAPS, "recipient_canonical_maps", PT_MAPS, "")
PARAM(CANONICAL_CLASSES, "canonical_classes", PT_LIST,
      "envelope_sender, envelope_recipient, header_sender, header_recipient")
PARAM(SENDER_CANONICAL_CLASSES, "sender_canonical_classes", PT_LIST,
      "envelope_sender, header_sender")
PARAM(RECIPIENT_CANONICAL_CLASSES, "recipient_canonical_classes", PT_LIST,
      "envelope_recipient, header_recipient")
PARAM(VIRTUAL_ALIAS_MAPS, "virtual_alias_maps", PT_MAPS, "")
PARAM(ALWAYS_BCC, "always_bcc", PT_STR, "")
PARAM(SENDER_BCC_MAPS, "sender_bcc_maps", PT_MAPS, "")
PARAM(RECIPIENT_BCC_MAPS, "recipient_bcc_maps", PT_MAPS, "")
PARAM(VIRTUAL_ALIAS_DOMAINS, "virtual_alias_domains", PT_DOMAINS,
      "$virtual_alias_maps")
PARAM(VIRTUAL_ALIAS_RECURSION_LIMIT, "virtual_alias_recursion_limit", PT_INT,
      "1000")
PARAM(VIRTUAL_ALIAS_EXPANSION_LIMIT, "virtual_alias_expansion_limit", PT_INT,
      "1000")
PARAM(PROPAGATE_UNMATCHED_EXTENSIONS, "propagate_unmatched_extensions",
      PT_LIST, "canonical, virtual")
PARAM(MASQUERADE_DOMAINS, "masquerade_domains", PT_LIST, "")
PARAM(MASQUERADE_EXCEPTIONS, "masquerade_exceptions", PT_LIST, "")
PARAM(MASQUERADE_CLASSES, "masquerade_classes", PT_LIST,
      "envelope_sender, header_sender, header_recipient")
PARAM(APPEND_AT_MYORIGIN, "append_at_myorigin", PT_BOOL, "yes")
PARAM(SMTP_LISTEN, "smtp_listen", PT_LIST, "127.0.0.1:2525")        /* tern */
/* Addresses this host receives mail on through a proxy or NAT: the SMTP
 * client counts them as itself, as it does its own listeners, when it
 * looks for MX records that point back here. */
PARAM(PROXY_INTERFACES, "proxy_interfaces", PT_LIST, "")
/* Look the client's name up (PTR, then an address record that matches)
 * before the greeting, on the job pool. */
PARAM(SMTPD_PEERNAME_LOOKUP, "smtpd_peername_lookup", PT_BOOL, "yes")
/* EHLO keywords not to announce (pipelining, chunking, dsn, ...;
 * "silent-discard" keeps it out of the log). */
PARAM(SMTPD_DISCARD_EHLO_KEYWORDS, "smtpd_discard_ehlo_keywords", PT_LIST,
      "")
/* Per-client rates of connections, MAIL commands and RCPT commands in
 * windows of anvil_rate_time_unit; 0 is no limit. */
PARAM(ANVIL_RATE_TIME_UNIT, "anvil_rate_time_unit", PT_TIME, "60s")
PARAM(SMTPD_CLIENT_CONNECTION_RATE_LIMIT,
      "smtpd_client_connection_rate_limit", PT_INT, "0")
PARAM(SMTPD_CLIENT_MESSAGE_RATE_LIMIT, "smtpd_client_message_rate_limit",
      PT_INT, "0")
PARAM(SMTPD_CLIENT_RECIPIENT_RATE_LIMIT,
      "smtpd_client_recipient_rate_limit", PT_INT, "0")
PARAM(SMTPD_CLIENT_EVENT_LIMIT_EXCEPTIONS,
      "smtpd_client_event_limit_exceptions", PT_LIST, "$mynetworks")
PARAM(ADMIN_LISTEN, "admin_listen", PT_LIST, "127.0.0.1:8025")      /* tern */
PARAM(ADMIN_TOKEN_FILE, "admin_token_file", PT_STR, "$data_directory/admin.token") /* tern */
PARAM(SMTPD_BANNER, "smtpd_banner", PT_STR, "$myhostname ESMTP $mail_name")
PARAM(SMTPD_TIMEOUT, "smtpd_timeout", PT_TIME, "300s")
PARAM(SMTPD_RECIPIENT_LIMIT, "smtpd_recipient_limit", PT_INT, "1000")
PARAM(SMTPD_SOFT_ERROR_LIMIT, "smtpd_soft_error_limit", PT_INT, "10")
PARAM(SMTPD_HARD_ERROR_LIMIT, "smtpd_hard_error_limit", PT_INT, "20")
PARAM(SMTPD_DATA_TIMEOUT, "smtpd_data_timeout", PT_TIME, "$smtpd_timeout") /* tern */
PARAM(SMTPD_CLIENT_CONNECTION_COUNT_LIMIT,
      "smtpd_client_connection_count_limit", PT_INT, "50")
PARAM(SMTPD_CONNECTION_LIMIT, "smtpd_connection_limit", PT_INT, "10000") /* tern */
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
/* Which SASL logins own which sender addresses, for the
 * reject_*_sender_login_mismatch restrictions. */
PARAM(SMTPD_SENDER_LOGIN_MAPS, "smtpd_sender_login_maps", PT_MAPS, "")
PARAM(DNS_SERVER, "dns_server", PT_STR, "") /* tern */
/* check_policy_service: Postfix's SMTPD_POLICY_README protocol.  The
 * timeout bounds each attempt (connect, request and answer); a request
 * that fails try_limit times, retry_delay apart, or gets an answer that
 * is no answer, takes default_action.  Idle connections are closed
 * after max_idle, any connection after max_ttl or request_limit
 * requests (0: no limit). */
PARAM(SMTPD_POLICY_SERVICE_TIMEOUT, "smtpd_policy_service_timeout", PT_TIME,
      "100s")
PARAM(SMTPD_POLICY_SERVICE_MAX_IDLE, "smtpd_policy_service_max_idle", PT_TIME,
      "300s")
PARAM(SMTPD_POLICY_SERVICE_MAX_TTL, "smtpd_policy_service_max_ttl", PT_TIME,
      "1000s")
PARAM(SMTPD_POLICY_SERVICE_TRY_LIMIT, "smtpd_policy_service_try_limit",
      PT_INT, "2")
PARAM(SMTPD_POLICY_SERVICE_RETRY_DELAY, "smtpd_policy_service_retry_delay",
      PT_TIME, "1s")
PARAM(SMTPD_POLICY_SERVICE_REQUEST_LIMIT,
      "smtpd_policy_service_request_limit", PT_INT, "0")
PARAM(SMTPD_POLICY_SERVICE_DEFAULT_ACTION,
      "smtpd_policy_service_default_action", PT_STR,
      "451 4.3.5 Server configuration problem")
PARAM(SMTPD_POLICY_SERVICE_POLICY_CONTEXT,
      "smtpd_policy_service_policy_context", PT_STR, "")
/* Milters (MILTER_README): smtpd_milters lists "inet:host:port" and
 * "unix:/path" services, asked in order at each SMTP event.  The
 * timeouts bound connecting, each command, and each step of the
 * message content; a Milter that fails gets milter_default_action
 * (accept, reject, tempfail or quarantine).  The *_macros lists name
 * the macros sent before each event. */
PARAM(SMTPD_MILTERS, "smtpd_milters", PT_LIST, "")
PARAM(MILTER_PROTOCOL, "milter_protocol", PT_INT, "6")
PARAM(MILTER_DEFAULT_ACTION, "milter_default_action", PT_STR, "tempfail")
PARAM(MILTER_CONNECT_TIMEOUT, "milter_connect_timeout", PT_TIME, "30s")
PARAM(MILTER_COMMAND_TIMEOUT, "milter_command_timeout", PT_TIME, "30s")
PARAM(MILTER_CONTENT_TIMEOUT, "milter_content_timeout", PT_TIME, "300s")
PARAM(MILTER_CONNECT_MACROS, "milter_connect_macros", PT_LIST,
      "j {daemon_name} {daemon_addr} v _")
PARAM(MILTER_HELO_MACROS, "milter_helo_macros", PT_LIST,
      "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}")
PARAM(MILTER_MAIL_MACROS, "milter_mail_macros", PT_LIST,
      "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} "
      "{mail_mailer}")
PARAM(MILTER_RCPT_MACROS, "milter_rcpt_macros", PT_LIST,
      "i {rcpt_addr} {rcpt_host} {rcpt_mailer}")
PARAM(MILTER_DATA_MACROS, "milter_data_macros", PT_LIST, "i")
PARAM(MILTER_END_OF_HEADER_MACROS, "milter_end_of_header_macros", PT_LIST,
      "i")
PARAM(MILTER_END_OF_DATA_MACROS, "milter_end_of_data_macros", PT_LIST, "i")
PARAM(MILTER_MACRO_DAEMON_NAME, "milter_macro_daemon_name", PT_STR,
      "$myhostname")
PARAM(MILTER_MACRO_V, "milter_macro_v", PT_STR, "$mail_name $mail_version")
PARAM(SMTPD_IO_THREADS, "smtpd_io_threads", PT_INT, "0")            /* tern */
PARAM(CLEANUP_THREADS, "cleanup_threads", PT_INT, "2")              /* tern */
PARAM(DELIVERY_THREADS, "delivery_threads", PT_INT, "20")           /* tern */
PARAM(QUEUE_RUN_DELAY, "queue_run_delay", PT_TIME, "300s")
PARAM(MINIMAL_BACKOFF_TIME, "minimal_backoff_time", PT_TIME, "300s")
PARAM(MAXIMAL_BACKOFF_TIME, "maximal_backoff_time", PT_TIME, "4000s")
PARAM(MAXIMAL_QUEUE_LIFETIME, "maximal_queue_lifetime", PT_TIME, "5d")
PARAM(BOUNCE_QUEUE_LIFETIME, "bounce_queue_lifetime", PT_TIME, "5d")
/* Delivery: routing, the SMTP and LMTP clients (LMTP uses the smtp_
 * timeouts), scheduling limits, notices, local and virtual mailboxes. */
PARAM(RELAYHOST, "relayhost", PT_STR, "")
/* Defer what would bounce, and answer 4xx where smtpd would refuse
 * with 5xx: a safety net while a configuration is new. */
PARAM(SOFT_BOUNCE, "soft_bounce", PT_BOOL, "no")
/* An after-queue content filter ("smtp:[127.0.0.1]:10024"): new mail
 * from outside goes there whatever its recipients; it comes back on a
 * smtp_listen address with the "nofilter" option. */
PARAM(CONTENT_FILTER, "content_filter", PT_STR, "")
/* relocated(5): addresses that moved; mail for them bounces with 5.1.6
 * "User has moved to ...", and smtpd refuses them at RCPT. */
PARAM(RELOCATED_MAPS, "relocated_maps", PT_MAPS, "")
/* A relayhost per envelope sender (the address, then @domain; "<>" for
 * the null sender); DUNNO keeps relayhost. */
/* generic(5): the SMTP client's rewriting of the envelope and header
 * addresses of outgoing mail (local names into public ones). */
PARAM(SMTP_GENERIC_MAPS, "smtp_generic_maps", PT_MAPS, "")
/* A TLS level per next hop ("example.com encrypt", "[mx]:587 verify",
 * ".example.com may"), over smtp_tls_security_level. */
PARAM(SMTP_TLS_POLICY_MAPS, "smtp_tls_policy_maps", PT_MAPS, "")
/* Send 8-bit content as it is to a server without 8BITMIME, rather
 * than encode its MIME parts as quoted-printable. */
PARAM(DISABLE_MIME_OUTPUT_CONVERSION, "disable_mime_output_conversion",
      PT_BOOL, "no")
PARAM(SENDER_DEPENDENT_RELAYHOST_MAPS, "sender_dependent_relayhost_maps",
      PT_MAPS, "")
PARAM(EMPTY_ADDRESS_RELAYHOST_MAPS_LOOKUP_KEY,
      "empty_address_relayhost_maps_lookup_key", PT_STR, "<>")
PARAM(DEFAULT_TRANSPORT, "default_transport", PT_STR, "smtp")
PARAM(LOCAL_TRANSPORT, "local_transport", PT_STR, "local:$myhostname")
PARAM(VIRTUAL_TRANSPORT, "virtual_transport", PT_STR, "virtual")
PARAM(TRANSPORT_MAPS, "transport_maps", PT_MAPS, "")
PARAM(SMTP_HELO_NAME, "smtp_helo_name", PT_STR, "$myhostname")
PARAM(SMTP_CONNECT_TIMEOUT, "smtp_connect_timeout", PT_TIME, "30s")
PARAM(SMTP_HELO_TIMEOUT, "smtp_helo_timeout", PT_TIME, "300s")
PARAM(SMTP_STARTTLS_TIMEOUT, "smtp_starttls_timeout", PT_TIME, "300s")
PARAM(SMTP_MAIL_TIMEOUT, "smtp_mail_timeout", PT_TIME, "300s")
PARAM(SMTP_RCPT_TIMEOUT, "smtp_rcpt_timeout", PT_TIME, "300s")
PARAM(SMTP_DATA_INIT_TIMEOUT, "smtp_data_init_timeout", PT_TIME, "120s")
PARAM(SMTP_DATA_XFER_TIMEOUT, "smtp_data_xfer_timeout", PT_TIME, "180s")
PARAM(SMTP_DATA_DONE_TIMEOUT, "smtp_data_done_timeout", PT_TIME, "600s")
PARAM(SMTP_RSET_TIMEOUT, "smtp_rset_timeout", PT_TIME, "20s")
PARAM(SMTP_QUIT_TIMEOUT, "smtp_quit_timeout", PT_TIME, "300s")
PARAM(SMTP_TLS_SECURITY_LEVEL, "smtp_tls_security_level", PT_STR, "")
PARAM(SMTP_TLS_CAFILE, "smtp_tls_CAfile", PT_STR, "")
PARAM(SMTP_MX_ADDRESS_LIMIT, "smtp_mx_address_limit", PT_INT, "5")
PARAM(SMTP_MX_SESSION_LIMIT, "smtp_mx_session_limit", PT_INT, "2")
PARAM(SMTP_CONNECTION_CACHE_TIME_LIMIT, "smtp_connection_cache_time_limit",
      PT_TIME, "2s")
PARAM(DEFAULT_DESTINATION_CONCURRENCY_LIMIT,
      "default_destination_concurrency_limit", PT_INT, "20")
PARAM(DEFAULT_DESTINATION_RECIPIENT_LIMIT,
      "default_destination_recipient_limit", PT_INT, "50")
PARAM(SMTP_DESTINATION_CONCURRENCY_LIMIT,
      "smtp_destination_concurrency_limit", PT_INT,
      "$default_destination_concurrency_limit")
PARAM(SMTP_DESTINATION_RECIPIENT_LIMIT, "smtp_destination_recipient_limit",
      PT_INT, "$default_destination_recipient_limit")
PARAM(LMTP_DESTINATION_CONCURRENCY_LIMIT,
      "lmtp_destination_concurrency_limit", PT_INT,
      "$default_destination_concurrency_limit")
PARAM(LMTP_DESTINATION_RECIPIENT_LIMIT, "lmtp_destination_recipient_limit",
      PT_INT, "$default_destination_recipient_limit")
PARAM(LOCAL_DESTINATION_CONCURRENCY_LIMIT,
      "local_destination_concurrency_limit", PT_INT, "2")
PARAM(LOCAL_DESTINATION_RECIPIENT_LIMIT, "local_destination_recipient_limit",
      PT_INT, "1")
PARAM(VIRTUAL_DESTINATION_CONCURRENCY_LIMIT,
      "virtual_destination_concurrency_limit", PT_INT,
      "$default_destination_concurrency_limit")
PARAM(VIRTUAL_DESTINATION_RECIPIENT_LIMIT,
      "virtual_destination_recipient_limit", PT_INT,
      "$default_destination_recipient_limit")
PARAM(INITIAL_DESTINATION_CONCURRENCY, "initial_destination_concurrency",
      PT_INT, "5")
PARAM(DEFAULT_DESTINATION_CONCURRENCY_FAILED_COHORT_LIMIT,
      "default_destination_concurrency_failed_cohort_limit", PT_INT, "1")
PARAM(QMGR_MESSAGE_ACTIVE_LIMIT, "qmgr_message_active_limit", PT_INT, "20000")
PARAM(DELAY_WARNING_TIME, "delay_warning_time", PT_TIME, "0h")
PARAM(BOUNCE_SIZE_LIMIT, "bounce_size_limit", PT_SIZE, "50000")
PARAM(VIRTUAL_MAILBOX_MAPS, "virtual_mailbox_maps", PT_MAPS, "")
PARAM(VIRTUAL_MAILBOX_DOMAINS, "virtual_mailbox_domains", PT_DOMAINS,
      "$virtual_mailbox_maps")
PARAM(VIRTUAL_MAILBOX_BASE, "virtual_mailbox_base", PT_STR, "")
PARAM(ALLOW_MAIL_TO_COMMANDS, "allow_mail_to_commands", PT_LIST,
      "alias, forward")
PARAM(ALLOW_MAIL_TO_FILES, "allow_mail_to_files", PT_LIST, "alias, forward")
PARAM(COMMAND_TIME_LIMIT, "command_time_limit", PT_TIME, "1000s")
PARAM(MAILBOX_DELIVERY_LOCK, "mailbox_delivery_lock", PT_LIST,
      "fcntl, dotlock")
PARAM(SMTP_SASL_AUTH_ENABLE, "smtp_sasl_auth_enable", PT_BOOL, "no")
PARAM(SMTP_SASL_PASSWORD_MAPS, "smtp_sasl_password_maps", PT_MAPS, "")
PARAM(SMTP_SASL_SECURITY_OPTIONS, "smtp_sasl_security_options", PT_LIST,
      "noplaintext, noanonymous")
PARAM(SMTP_SASL_TLS_SECURITY_OPTIONS, "smtp_sasl_tls_security_options",
      PT_LIST, "$smtp_sasl_security_options")
PARAM(LOCAL_USER_DELIVERY, "local_user_delivery", PT_BOOL, "yes") /* tern */
/* The account that runs the commands and writes the files of aliases
 * (never root or mail_owner), when ternd starts as root. */
PARAM(DEFAULT_PRIVS, "default_privs", PT_STR, "nobody")
/* Where a local user's mail goes once no alias took it, in this order:
 * another transport (lmtp:unix:/run/dovecot/lmtp), a command run as the
 * user (/usr/lib/dovecot/dovecot-lda; "$" in it is left for the shell,
 * not taken for a parameter), or mail_spool_directory. */
PARAM(MAILBOX_TRANSPORT, "mailbox_transport", PT_STR, "")
PARAM(MAILBOX_COMMAND, "mailbox_command", PT_STR, "")
PARAM(HOME_MAILBOX, "home_mailbox", PT_STR, "")
