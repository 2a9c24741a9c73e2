// Placeholder.
enum CacheStorePlaceholder {}
