// Placeholder: the AMQP module's sources replace this file.
