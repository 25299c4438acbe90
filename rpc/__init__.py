"""JSON-RPC 2.0 over HTTP and WebSocket with Lotus method names and JSON shapes."""
