// Placeholder replaced by the ReplicationSec implementation.
public enum ReplicationSecModule {}
