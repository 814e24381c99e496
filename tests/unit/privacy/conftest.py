from tests.unit.pipeline.conftest import make_ctx, site

__all__ = ["make_ctx", "site"]
