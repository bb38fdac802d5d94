# Bursar 頁面的繁體中文文案。每個鍵都須同時存在於 en.ftl 與 zh-Hans.ftl。

skip-to-content = 跳至主要內容
nav-label = 主選單
nav-language = 語言
nav-dashboard = 總覽
nav-buy = 購買點數
nav-orders = 訂單
nav-transactions = 明細
nav-settings = 設定
nav-merchant = 商家
nav-sign-in = 登入
nav-register = 註冊
nav-sign-out = 登出
footer-note = Bursar · 預付點數，每一筆都有帳可查
never = 永不到期

home-title = 歡迎
home-heading = 一次儲值，處處可用的點數
home-lead = 購買點數，在服務中使用，每一筆進出都清清楚楚。
home-get-started = 建立帳戶
home-go-dashboard = 前往總覽
home-packages = 方案
home-no-packages = 目前尚無販售中的方案，請稍後再來。
home-buy-this = 購買

field-email = 電子郵件
field-password = 密碼
field-display-name = 暱稱（選填）
field-current-password = 目前的密碼
field-new-password = 新密碼
field-language = 語言
field-time-zone = 時區
field-quantity = 數量
field-coupon = 優惠碼（選填）

login-title = 登入
login-submit = 登入
login-no-account = 第一次來嗎？
login-forgot = 忘記密碼？請在應用程式中取得一次性登入驗證碼，登入後於「設定」設定新密碼。
login-wrong = 電子郵件或密碼不正確。
login-suspended = 此帳戶已停用，請聯絡客服。
login-too-many = 嘗試次數過多，請一分鐘後再試。

register-title = 建立帳戶
register-submit = 建立帳戶
register-have-account = 已經有帳戶了？
register-account-type = 帳戶類型
register-as-member = 會員：購買並使用點數
register-as-merchant = 商家：上架商品，供會員以點數兌換
register-email-invalid = 請輸入有效的電子郵件，例如 name@example.com。
register-email-taken = 此電子郵件已註冊，請直接登入。
register-password-hint = 至少 8 個字元。
register-password-rule = 密碼長度須為 8 至 256 個字元。
register-name-rule = 暱稱最多 100 個字元。

dashboard-title = 總覽
dashboard-hello = 你好，{ $name }
dashboard-balance = 餘額
dashboard-available = 可用點數
dashboard-credits-unit = 點
dashboard-held = 有 { $credits } 點因進行中的付款而保留
dashboard-grants = 點數來源
dashboard-no-grants = 你還沒有點數，購買一個方案開始吧。
dashboard-recent = 最近動態
dashboard-no-activity = 你的帳戶還沒有任何動態。
dashboard-all-activity = 查看全部明細

col-source = 來源
col-remaining = 剩餘
col-expires = 到期時間
col-when = 日期
col-kind = 類型
col-amount = 數額
col-balance-after = 異動後餘額
col-item = 品項
col-total = 總計
col-status = 狀態

source-purchase = 購買
source-bonus = 贈送
source-allowance = 訂閱每日額度
source-gift = 禮物
source-refund = 退款
source-adjustment = 人工調整

kind-purchase = 購買
kind-bonus = 贈送
kind-spend = 使用
kind-refund = 退款
kind-redemption = 兌換
kind-redemption_refund = 兌換退回
kind-allowance = 每日額度
kind-expiry = 到期
kind-gift = 禮物
kind-adjustment = 人工調整
kind-auto_topup = 自動儲值
kind-clawback = 退款後扣回

status-pending = 等待付款
status-paid = 已付款
status-failed = 付款失敗
status-cancelled = 已取消
status-expired = 已逾期
status-refunded = 已退款

provider-sandbox = 測試卡（沙盒）
provider-stripe = 信用卡（Stripe）
provider-alipay = 支付寶
provider-wechatpay = 微信支付
provider-ecpay = 綠界 ECPay
provider-bank_transfer = 銀行轉帳

buy-title = 購買點數
buy-choose-package = 選擇方案
buy-choose-provider = 付款方式
buy-credits-count = { $credits } 點
buy-bonus-count = 贈送 { $credits } 點
buy-check-price = 查看價格
buy-continue = 前往付款
buy-subtotal = 小計
buy-discount = 折扣
buy-total = 總計
buy-you-get = 可獲得
buy-pick-first = 選擇方案後顯示價格。
buy-coupon-unusable = 此優惠碼不適用於本訂單。
buy-quantity-rule = 數量須介於 1 到 1000。
buy-package-missing = 此方案已下架。
buy-package-required = 請選擇方案。
buy-provider-required = 請選擇付款方式。
buy-provider-unusable = 此付款方式不支援本訂單。
buy-provider-down = 暫時無法連線至付款服務商，未產生任何扣款，請重試。
buy-failed = 訂單未能建立，未產生任何扣款，請重試。

orders-title = 我的訂單
orders-empty = 你還沒有訂單。
order-title = 訂單
order-provider = 付款方式
order-reason = 原因
order-number = 訂單編號
order-transfer = 請轉帳 { $amount }，並於附言填寫參考碼 { $reference }。款項確認後點數即入帳。
order-transfer-account = 收款帳戶：{ $account }
order-scan = 掃碼付款
order-pay-now = 立即付款
order-receipt = 收據
order-back = 返回訂單

receipt-title = 收據 { $number }
receipt-tax-id = 統一編號 { $id }
receipt-issued = 開立時間 { $when }
receipt-buyer = 付款人 { $email }
receipt-unit-price = 單價
receipt-refunded = 已退款

history-title = 交易明細
history-all-kinds = 全部類型
history-from = 起始日期
history-to = 截止日期
history-filter = 篩選
history-csv = 下載 CSV
history-empty = 沒有符合篩選條件的交易。

pager-label = 分頁
pager-older = 較早

settings-title = 設定
settings-profile = 個人資料
settings-save = 儲存
settings-saved = 設定已儲存。
settings-zone-default = 服務預設時區
settings-zone-invalid = 請從清單中選擇時區。
settings-password = 密碼
settings-password-note = 變更密碼後，其他裝置上的登入將全部登出。
settings-change-password = 變更密碼
settings-current-wrong = 目前的密碼不正確。
settings-password-saved = 密碼已變更，其他工作階段皆已登出。

error-status = 錯誤 { $status }
error-back = 返回
error-not-found-title = 找不到頁面
error-not-found = 此網址沒有內容。請檢查連結，或從首頁重新開始。
error-forbidden-title = 沒有權限
error-forbidden = 你的帳戶無法開啟此頁面。
error-csrf-title = 表單已失效
error-csrf = 此表單已過期或並非來自本站，因此沒有任何變更。請返回、重新整理頁面後再試。
error-too-large-title = 資料過多
error-too-large = 表單送出的資料超過本頁面的上限。
error-too-many-title = 嘗試次數過多
error-too-many = 請一分鐘後再試。
error-internal-title = 發生錯誤
error-internal = 操作未能完成，也沒有任何變更，請稍後再試。
