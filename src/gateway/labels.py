"""How payers, cashiers and the province read the closed sets: the Vietnamese names of the methods and channels, the
same on a receipt and in a report."""

from __future__ import annotations

from gateway.domain import PaymentChannel, PaymentMethod

METHOD_NAMES: dict[str, str] = {
    PaymentMethod.vietqr: "Chuyển khoản (VietQR)",
    PaymentMethod.card: "Thẻ",
    PaymentMethod.ewallet: "Ví điện tử",
    PaymentMethod.mobile_money: "Tiền di động",
    PaymentMethod.national_platform: "Cổng Dịch vụ công quốc gia",
    PaymentMethod.counter: "Tại quầy",
    PaymentMethod.partner: "Đối tác thu hộ",
}
CHANNEL_NAMES: dict[str, str] = {PaymentChannel.online: "Trực tuyến", PaymentChannel.counter: "Tại quầy"}
