from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns.gdpr import customer_erase, customer_export
        from customers.gdpr import register_eraser, register_exporter

        register_exporter("campaigns", customer_export)
        register_eraser("campaigns", customer_erase)
