// Placeholder.
enum RESPServerPlaceholder {}
