# A group of commands lists its patterns with their short help, tab-aligned
help vm config
