"""Local stand-ins for third-party internet services: aiohttp apps on 127.0.0.1 that answer like the vendor."""
