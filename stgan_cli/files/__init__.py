"""Reading and writing files (the I/O layer under the commands)."""
