"""The gateway in front of the Prefect UI and API: personal logins, roles, attributed decisions, an audit trail."""
