// Placeholder.
enum CacheNodePlaceholder {}
