"""`condpred serve`: a local web app to explore stored runs and grow continuation trees.

Starlette (a small, maintained ASGI framework, already installed with the llama.cpp server and
FastAPI) serves server-rendered Jinja2 pages (Jinja2 is condpred's own template engine) and one
small vanilla script; everything the page loads is package data, nothing comes from a CDN.
"""

from condpred.viewer.app import create_app

__all__ = ["create_app"]
