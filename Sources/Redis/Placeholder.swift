// Placeholder: the Redis module's sources replace this file.
