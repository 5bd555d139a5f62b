"""Estimators for pass@k under independent and coupled sampling."""
