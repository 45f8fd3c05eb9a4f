#pragma once
// rabbitmq-c <= 0.11 (Debian 12) installs flat headers (/usr/include/amqp.h);
// rabbitmq-c >= 0.12 installs <rabbitmq-c/amqp.h>. Support both.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif

// amqp_login() is variadic (SASL arguments are passed as ...), so Swift cannot call it.
static inline amqp_rpc_reply_t crmq_login_plain(amqp_connection_state_t state, const char *vhost,
                                                int channel_max, int frame_max, int heartbeat,
                                                const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// amqp_login_with_properties() is variadic too; used to send a connection name to the broker.
static inline amqp_rpc_reply_t crmq_login_plain_with_properties(amqp_connection_state_t state, const char *vhost,
                                                                int channel_max, int frame_max, int heartbeat,
                                                                const amqp_table_t *properties,
                                                                const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// The AMQP connection thread is woken through an eventfd; Swift's Glibc module does not export <sys/eventfd.h>.
#if defined(__linux__)
#include <sys/eventfd.h>
#endif
