"""What every process needs: settings, logging, telemetry, metrics, the Temporal client, codec."""
