-- A WeCom group robot takes at most 20 messages a minute and refuses the rest (errcode
-- 45009). Alerts for such a robot are one message per turn covering every payment due, and
-- the turn is the database's, shared by the instances: next_send_at (by the database's
-- clock) is when the next message may go. Taking the turn reserves it for a minute (an
-- instance that dies holding it gives it up then); sending moves it to 3 s later, or a
-- minute later when the robot said 45009.
alter table alert_settings add column next_send_at bigint not null default 0;
