"""Which packages the wheel holds; everything else about the project is in pyproject.toml.

The SQL models and example plans are top-level folders of the repository, mapped into the
package (`kpi_pipeline.dbt_like_sql`, `kpi_pipeline.plan_config`) so an installed pipeline
finds them through importlib.resources, from a wheel as from `pip install -e .`.
`packages.find` in pyproject.toml cannot list a package whose folder is not under its
parent's, hence this file.
"""

from setuptools import find_namespace_packages, setup

SHIPPED_FOLDERS = {
    "kpi_pipeline.dbt_like_sql": "dbt_like_sql",
    "kpi_pipeline.plan_config": "plan_config",
}
PYCACHE = ["__pycache__", "*.__pycache__"]


def shipped_packages() -> list[str]:
    """The mapped folders and their subfolders (`kpi_pipeline.dbt_like_sql.staging.ga4`, ...)."""
    return [
        name
        for package, folder in SHIPPED_FOLDERS.items()
        for name in [
            package,
            *(f"{package}.{sub}" for sub in find_namespace_packages(folder, exclude=PYCACHE)),
        ]
    ]


setup(
    packages=[
        *find_namespace_packages(include=["kpi_pipeline", "kpi_pipeline.*"], exclude=PYCACHE),
        *shipped_packages(),
    ],
    package_dir=SHIPPED_FOLDERS,
    package_data={
        "kpi_pipeline.dbt_like_sql": ["**/*.sql"],
        "kpi_pipeline.plan_config": ["*.yaml"],
        "kpi_pipeline.scaffold.templates": ["*"],  # `kpi-pipeline init`'s project files
    },
)
