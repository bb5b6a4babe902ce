"""The model browser: HTML pages about every model version, a client of the data plane mounted on the HTTP app."""
