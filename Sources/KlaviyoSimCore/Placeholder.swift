// Placeholder: the KlaviyoSimCore module's sources replace this file.
