"""CCI linkage library: pseudonymisation, registry store, linkage engine. Knows nothing of HTTP."""
