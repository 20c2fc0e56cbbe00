"""The demo community: synthetic residents, organizations, clients and consents."""
