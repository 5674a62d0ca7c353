"""Dagster resources. Connection settings arrive through `dg.EnvVar`, never read at import."""

import dagster as dg
from pydantic import PrivateAttr

from kpi_pipeline.warehouse.engine import DEFAULT_WAREHOUSE_URL, Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (DuckDB file by default); `url` is a SQLAlchemy URL. With
    `plan_id`, every table lives in that plan's own schemas (`<plan_id>_raw`, ...)."""

    url: str = DEFAULT_WAREHOUSE_URL
    plan_id: str | None = None
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._warehouse = Warehouse.from_url(self.url, self.plan_id)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # DuckDB allows one writing process: release the file as soon as the step ends.
        if self._warehouse is not None:
            self._warehouse.dispose()

    def get(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = Warehouse.from_url(self.url, self.plan_id)
        return self._warehouse
