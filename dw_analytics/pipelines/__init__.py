"""The project's registered pipelines; importing this package registers them."""

from dw_analytics.engines import pipelines as _engines  # noqa: F401
from dw_analytics.pipelines import analytics, etl, nightly, star_schema  # noqa: F401
