//! Chinese first, English switchable. The language is a cookie (`paydesk_lang`) read on the
//! server and mirrored into `<html lang>` so the browser hydrates with the same text; the
//! switcher is a plain link to `/lang/{zh|en}` that sets the cookie and comes back.

use leptos::prelude::*;

/// The cookie holding the chosen language.
pub const LANG_COOKIE: &str = "paydesk_lang";

/// A dashboard language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文 (the default: the staff are in China).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From a cookie or attribute value; anything unknown is Chinese.
    pub fn from_code(code: &str) -> Lang {
        if code.trim().eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    /// The cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `<html lang>` value.
    pub fn html_code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language of the current request (server) or page (browser).
    pub fn detect() -> Lang {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|parts| {
                    parts
                        .headers
                        .get_all(http::header::COOKIE)
                        .iter()
                        .find_map(|value| {
                            value.to_str().ok()?.split(';').find_map(|pair| {
                                let (name, value) = pair.trim().split_once('=')?;
                                (name == LANG_COOKIE).then(|| Lang::from_code(value))
                            })
                        })
                })
                .unwrap_or_default()
        }
        #[cfg(not(feature = "ssr"))]
        {
            document()
                .document_element()
                .and_then(|el| el.get_attribute("lang"))
                .map(|code| {
                    if code.starts_with("en") {
                        Lang::En
                    } else {
                        Lang::Zh
                    }
                })
                .unwrap_or_default()
        }
    }
}

/// The language in effect for this page.
pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

macro_rules! messages {
    ($($key:ident => $zh:literal, $en:literal;)*) => {
        /// Every text the dashboard shows, with its Chinese and English wording.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $(#[doc = $en] $key,)* }

        impl Msg {
            /// The wording in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$key, Lang::Zh) => $zh, (Msg::$key, Lang::En) => $en,)*
                }
            }
        }
    };
}

messages! {
    AppName => "paydesk 商户后台", "paydesk merchant console";
    SignIn => "登录", "Sign in";
    SignOut => "退出登录", "Sign out";
    SignInTitle => "登录 paydesk", "Sign in to paydesk";
    SignInHint => "使用管理员为您创建的账户登录。", "Use the account your administrator created for you.";
    Username => "用户名", "Username";
    Password => "密码", "Password";
    InvalidCredentials => "用户名或密码错误。", "Invalid username or password.";
    ThrottledPrefix => "登录失败次数过多，请在 ", "Too many failed sign-ins. Try again in ";
    ThrottledSuffix => " 分钟后重试。", " minutes.";
    NavUsers => "用户管理", "Users";
    NavAccount => "我的账户", "My account";
    RoleStaff => "店员", "Staff";
    RoleSupport => "客服", "Support";
    RoleManager => "经理", "Manager";
    RoleAdmin => "管理员", "Admin";
    Loading => "加载中…", "Loading…";
    Forbidden => "无权访问：服务器拒绝了此请求。", "Access denied: the server refused this request.";
    ForbiddenHint => "此页面需要更高的角色权限。如需访问，请联系管理员。", "This page needs a higher role. Ask an administrator if you need access.";
    NotFound => "页面不存在。", "Page not found.";
    InternalError => "服务器内部错误，请稍后重试。", "Internal server error. Please try again later.";
    SessionExpired => "请先登录。", "Please sign in first.";
    UsersTitle => "用户管理", "Users";
    UsersIntro => "管理后台账户与角色。角色依次包含：店员 < 客服 < 经理 < 管理员。", "Manage console accounts and roles. Roles are ordered: staff < support < manager < admin.";
    AddUser => "添加用户", "Add user";
    InitialPassword => "初始密码（至少 10 个字符）", "Initial password (at least 10 characters)";
    Role => "角色", "Role";
    Status => "状态", "Status";
    Active => "启用", "Active";
    Disabled => "已停用", "Disabled";
    LastLogin => "最近登录", "Last sign-in";
    Created => "创建时间", "Created";
    Actions => "操作", "Actions";
    Never => "从未", "Never";
    ChangeRole => "修改角色", "Change role";
    Disable => "停用", "Disable";
    Enable => "启用", "Enable";
    ResetPassword => "重置密码", "Reset password";
    NewPasswordFor => "新的临时密码（只显示这一次）：", "New temporary password (shown only once) for ";
    UserAdded => "已添加用户：", "User added: ";
    Saved => "已保存。", "Saved.";
    You => "（您）", " (you)";
    AccountTitle => "我的账户", "My account";
    ChangePassword => "修改密码", "Change password";
    CurrentPassword => "当前密码", "Current password";
    NewPassword => "新密码（至少 10 个字符）", "New password (at least 10 characters)";
    ConfirmPassword => "确认新密码", "Confirm new password";
    PasswordsDiffer => "两次输入的新密码不一致。", "The new passwords do not match.";
    PasswordChanged => "密码已修改。", "Password changed.";
    RecentActivity => "最近的登录记录", "Recent sign-in activity";
    Time => "时间", "Time";
    Event => "事件", "Event";
    Address => "来源地址", "Address";
    EvLoginSuccess => "登录成功", "Signed in";
    EvLoginFailure => "登录失败", "Failed sign-in";
    EvLoginThrottled => "登录被限流", "Sign-in throttled";
    EvLogout => "退出登录", "Signed out";
    EvPasswordChange => "修改了密码", "Changed password";
    EvOther => "其他", "Other";
    Language => "语言", "Language";
    SignedInAs => "当前用户", "Signed in as";
    TimesNote => "时间均为北京时间（Asia/Shanghai）。", "Times are China Standard Time (Asia/Shanghai).";
    InvalidInput => "输入有误：", "Invalid input: ";
    NavProducts => "商品管理", "Products";
    ProductsTitle => "商品管理", "Products";
    ProductsIntro => "小程序售卖的商品。价格以元填写（如 12.34），下单时由服务器计价；已下的订单保留下单时的价格。", "What the mini program sells. Prices are in yuan (e.g. 12.34) and the server prices every order; existing orders keep the price they were made with.";
    ProductName => "商品名称", "Name";
    Price => "单价", "Price";
    PriceYuan => "单价（元）", "Price (yuan)";
    OnSale => "在售", "On sale";
    OffSale => "已下架", "Off sale";
    Save => "保存", "Save";
    AddProduct => "添加商品", "Add product";
}

/// A role's name in `lang`.
pub fn role_name(role: paydesk_types::Role, lang: Lang) -> &'static str {
    use paydesk_types::Role;
    match role {
        Role::Staff => Msg::RoleStaff,
        Role::Support => Msg::RoleSupport,
        Role::Manager => Msg::RoleManager,
        Role::Admin => Msg::RoleAdmin,
    }
    .text(lang)
}
