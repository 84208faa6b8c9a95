from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.domain import PaymentStatus


class ReturnStatus(BaseModel):
    payment_id: str
    status: PaymentStatus


class VerifyOrderAnswer(BaseModel):
    """The answer to a telco's verify-order (§15), in the telco's format."""

    billcode: str
    error_code: str = Field(
        description="`00` open (amount in trans_amount), `01` unknown or not payable, `02` bad check_sum, `03` other"
    )
    merchant_code: str
    order_id: str
    trans_amount: str
    check_sum: str = Field(
        description="Over billcode, error_code, merchant_code, order_id, trans_amount; empty "
        "when the call's own check_sum did not hold"
    )
    customer_name: str | None = Field(default=None, description="Masked, for the payer's screen (not signed)")


class PlatformFee(BaseModel):
    LoaiPhiLePhi: str = Field(description="`1` fee (phí), `2` charge (lệ phí)")
    MaPhiLePhi: str
    TenPhiLePhi: str
    SoTien: int


class PlatformInquiryAnswer(BaseModel):
    """The answer to the national platform's inquiry by dossier code (§16), in the platform's format."""

    error_code: int = Field(
        description="`1` payable, `0` nothing due / already paid / unknown, `-1` error or bad MaXacThuc"
    )
    MaHoSo: str
    MaDoiTac: str
    SoTien: int = Field(description="What is due (0 unless payable)")
    MaThamChieu: str = Field(description="The reference the platform's result must name (empty unless payable)")
    PhiLePhi: list[PlatformFee]
    MaXacThuc: str = Field(
        description="SHA-256 of error_code|MaHoSo|MaDoiTac|MaThamChieu|SoTien|hash_key; empty when the inquiry's "
        "own MaXacThuc did not hold"
    )


class Biller(BaseModel):
    biller_code: str
    name: str


class BillerList(BaseModel):
    billers: list[Biller]
