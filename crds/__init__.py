"""The FMA API: custom-resource models, Pod metadata keys and generated CRD manifests.

This package imports none of our other packages; every other package uses it.
"""

__all__: list[str] = []
