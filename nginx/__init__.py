"""The reverse proxy: nginx config template, its renderer and a local runner."""
