// Placeholder replaced by the CacheFramework implementation.
public enum CacheFrameworkModule {}
