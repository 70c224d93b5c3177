"""`sealtrail serve`: the admin query API over the trail (FastAPI)."""
