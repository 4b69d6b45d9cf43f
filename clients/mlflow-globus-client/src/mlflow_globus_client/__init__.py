"""Fresh bearer tokens for the MLflow Python client behind alcf.mlflow_globus.

``mlflow-globus-login`` writes a token file once; the MLflow request auth provider ``globus``
(``MLFLOW_TRACKING_AUTH=globus``) reads it and renews the ID token before it expires, so a job that
logs for a week keeps logging.
"""

__version__ = '0.1.0'
