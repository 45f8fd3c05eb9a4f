// Placeholder: the Klaviyo module's sources replace this file.
