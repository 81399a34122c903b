from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"

    def ready(self) -> None:
        try:
            from customers.gdpr import register_eraser, register_exporter
        except ImportError:  # customers without GDPR support: nothing to join
            return
        from support.gdpr import customer_erase, customer_export

        register_exporter("support", customer_export)
        register_eraser("support", customer_erase)
