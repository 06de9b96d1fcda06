"""Adapters of the partner systems the engine synchronises with, one module per partner,
all speaking HTTP through :class:`engine.adapters.partners.http.PartnerHttp`."""
