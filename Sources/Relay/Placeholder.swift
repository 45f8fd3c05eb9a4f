// Placeholder: the Relay module's sources replace this file.
