// Placeholder: the HTTPClient module's sources replace this file.
