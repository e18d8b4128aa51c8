-- Airflow 3.3.2 schema on PostgreSQL, made by tests/compat/generate (airflow db migrate, pg_dump 15.18).
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

--
-- Name: asset; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset (
    id integer NOT NULL,
    name character varying(1500) NOT NULL,
    uri character varying(1500) NOT NULL,
    "group" character varying(1500) NOT NULL,
    extra json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: asset_active; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_active (
    name character varying(1500) NOT NULL,
    uri character varying(1500) NOT NULL
);

--
-- Name: asset_alias; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_alias (
    id integer NOT NULL,
    name character varying(1500) NOT NULL,
    "group" character varying(1500) NOT NULL
);

--
-- Name: asset_alias_asset; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_alias_asset (
    alias_id integer NOT NULL,
    asset_id integer NOT NULL
);

--
-- Name: asset_alias_asset_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_alias_asset_event (
    alias_id integer NOT NULL,
    event_id integer NOT NULL
);

--
-- Name: asset_alias_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_alias_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: asset_alias_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_alias_id_seq OWNED BY public.asset_alias.id;

--
-- Name: asset_dag_run_queue; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_dag_run_queue (
    asset_id integer NOT NULL,
    target_dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: asset_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_event (
    id integer NOT NULL,
    asset_id integer NOT NULL,
    extra json NOT NULL,
    source_task_id character varying(250),
    source_dag_id character varying(250),
    source_run_id character varying(250),
    source_map_index integer DEFAULT '-1'::integer,
    "timestamp" timestamp with time zone NOT NULL,
    partition_key character varying(250)
);

--
-- Name: asset_event_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: asset_event_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_event_id_seq OWNED BY public.asset_event.id;

--
-- Name: asset_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: asset_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_id_seq OWNED BY public.asset.id;

--
-- Name: asset_partition_dag_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_partition_dag_run (
    id integer NOT NULL,
    target_dag_id character varying(250) NOT NULL,
    created_dag_run_id integer,
    partition_key character varying(250) NOT NULL,
    partition_date timestamp with time zone,
    rollup_fingerprint json,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: asset_partition_dag_run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_partition_dag_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: asset_partition_dag_run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_partition_dag_run_id_seq OWNED BY public.asset_partition_dag_run.id;

--
-- Name: asset_state_store; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_state_store (
    asset_id integer NOT NULL,
    key character varying(512) NOT NULL,
    value text NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    last_updated_by_kind character varying(16),
    last_updated_by_dag_id character varying(250),
    last_updated_by_run_id character varying(250),
    last_updated_by_task_id character varying(250),
    last_updated_by_map_index integer
);

--
-- Name: asset_watcher; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_watcher (
    name character varying(1500) NOT NULL,
    asset_id integer NOT NULL,
    trigger_id integer NOT NULL
);

--
-- Name: backfill; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.backfill (
    id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    from_date timestamp with time zone NOT NULL,
    to_date timestamp with time zone NOT NULL,
    dag_run_conf json NOT NULL,
    is_paused boolean,
    reprocess_behavior character varying(250) NOT NULL,
    max_active_runs integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    triggering_user_name character varying(512)
);

--
-- Name: backfill_dag_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.backfill_dag_run (
    id integer NOT NULL,
    backfill_id integer NOT NULL,
    dag_run_id integer,
    exception_reason character varying(250),
    logical_date timestamp with time zone,
    partition_key character varying(250),
    sort_ordinal integer NOT NULL
);

--
-- Name: backfill_dag_run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.backfill_dag_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: backfill_dag_run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.backfill_dag_run_id_seq OWNED BY public.backfill_dag_run.id;

--
-- Name: backfill_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.backfill_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: backfill_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.backfill_id_seq OWNED BY public.backfill.id;

--
-- Name: callback; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.callback (
    id uuid NOT NULL,
    type character varying(20) NOT NULL,
    fetch_method character varying(20) NOT NULL,
    data jsonb NOT NULL,
    bundle_name character varying(250),
    state character varying(10),
    output text,
    priority_weight integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    trigger_id integer
);

--
-- Name: connection; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.connection (
    id integer NOT NULL,
    conn_id character varying(250) NOT NULL,
    conn_type character varying(500) NOT NULL,
    description text,
    host character varying(500),
    schema character varying(500),
    login text,
    port integer,
    team_name character varying(50),
    password text,
    extra text,
    is_encrypted boolean NOT NULL,
    is_extra_encrypted boolean NOT NULL
);

--
-- Name: connection_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.connection_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: connection_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.connection_id_seq OWNED BY public.connection.id;

--
-- Name: connection_test_request; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.connection_test_request (
    id uuid NOT NULL,
    token character varying(64) NOT NULL,
    connection_id character varying(250) NOT NULL,
    state character varying(20) NOT NULL,
    result_message character varying(2000),
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    executor character varying(256),
    queue character varying(256),
    conn_type character varying(500) NOT NULL,
    host character varying(500),
    login text,
    schema character varying(500),
    port integer,
    commit_on_success boolean DEFAULT false NOT NULL,
    is_encrypted boolean DEFAULT false NOT NULL,
    is_extra_encrypted boolean DEFAULT false NOT NULL,
    active_connection_id character varying(250),
    team_name character varying(50),
    password text,
    extra text
);

--
-- Name: dag; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag (
    dag_id character varying(250) NOT NULL,
    is_paused boolean NOT NULL,
    is_stale boolean NOT NULL,
    exceeds_max_non_backfill boolean DEFAULT false NOT NULL,
    last_parsed_time timestamp with time zone,
    last_parse_duration double precision,
    last_expired timestamp with time zone,
    fileloc character varying(2000),
    relative_fileloc character varying(2000),
    bundle_name character varying(250) NOT NULL,
    bundle_version character varying(200),
    owners character varying(2000),
    dag_display_name character varying(2000),
    description text,
    timetable_type character varying(255) NOT NULL,
    timetable_summary text,
    timetable_description character varying(1000),
    timetable_partitioned boolean DEFAULT false NOT NULL,
    timetable_periodic boolean DEFAULT false NOT NULL,
    partition_mapper_info json NOT NULL,
    asset_expression json,
    deadline json,
    max_active_tasks integer NOT NULL,
    max_active_runs integer,
    max_consecutive_failed_dag_runs integer NOT NULL,
    has_task_concurrency_limits boolean NOT NULL,
    has_import_errors boolean DEFAULT false,
    fail_fast boolean DEFAULT false NOT NULL,
    allowed_run_types json,
    next_dagrun timestamp with time zone,
    next_dagrun_data_interval_start timestamp with time zone,
    next_dagrun_data_interval_end timestamp with time zone,
    next_dagrun_partition_key character varying(255),
    next_dagrun_partition_date timestamp with time zone,
    next_dagrun_create_after timestamp with time zone
);

--
-- Name: dag_bundle; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_bundle (
    name character varying(250) NOT NULL,
    active boolean,
    version character varying(200),
    last_refreshed timestamp with time zone,
    signed_url_template text,
    template_params json
);

--
-- Name: dag_bundle_team; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_bundle_team (
    dag_bundle_name character varying(250) NOT NULL,
    team_name character varying(50) NOT NULL
);

--
-- Name: dag_code; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_code (
    id uuid NOT NULL,
    dag_id character varying(250) NOT NULL,
    fileloc character varying(2000) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_updated timestamp with time zone NOT NULL,
    source_code text NOT NULL,
    source_code_hash character varying(32) NOT NULL,
    dag_version_id uuid NOT NULL
);

--
-- Name: dag_favorite; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_favorite (
    user_id character varying(250) NOT NULL,
    dag_id character varying(250) NOT NULL
);

--
-- Name: dag_owner_attributes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_owner_attributes (
    dag_id character varying(250) NOT NULL,
    owner character varying(500) NOT NULL,
    link character varying(500) NOT NULL
);

--
-- Name: dag_priority_parsing_request; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_priority_parsing_request (
    id character varying(32) NOT NULL,
    bundle_name character varying(250) NOT NULL,
    relative_fileloc character varying(2000) NOT NULL
);

--
-- Name: dag_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_run (
    id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    queued_at timestamp with time zone,
    logical_date timestamp with time zone,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    state character varying(50),
    run_id character varying(250) NOT NULL,
    creating_job_id integer,
    run_type character varying(50) NOT NULL,
    triggered_by character varying(50),
    triggering_user_name character varying(512),
    conf jsonb,
    data_interval_start timestamp with time zone,
    data_interval_end timestamp with time zone,
    run_after timestamp with time zone NOT NULL,
    last_scheduling_decision timestamp with time zone,
    log_template_id integer,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    clear_number integer DEFAULT 0 NOT NULL,
    backfill_id integer,
    bundle_version character varying(250),
    scheduled_by_job_id integer,
    context_carrier jsonb,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    created_dag_version_id uuid,
    partition_key character varying(250),
    partition_date timestamp with time zone
);

--
-- Name: dag_run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dag_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: dag_run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dag_run_id_seq OWNED BY public.dag_run.id;

--
-- Name: dag_run_note; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_run_note (
    user_id character varying(128),
    dag_run_id integer NOT NULL,
    content character varying(1000),
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: dag_schedule_asset_alias_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_schedule_asset_alias_reference (
    alias_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: dag_schedule_asset_name_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_schedule_asset_name_reference (
    name character varying(1500) NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: dag_schedule_asset_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_schedule_asset_reference (
    asset_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    allow_producer_teams json,
    allow_global_producers boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: dag_schedule_asset_uri_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_schedule_asset_uri_reference (
    uri character varying(1500) NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: dag_tag; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_tag (
    name character varying(100) NOT NULL,
    dag_id character varying(250) NOT NULL
);

--
-- Name: dag_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_version (
    id uuid NOT NULL,
    version_number integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    bundle_name character varying(250),
    bundle_version character varying(250),
    version_data json,
    created_at timestamp with time zone NOT NULL,
    last_updated timestamp with time zone NOT NULL
);

--
-- Name: dag_warning; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dag_warning (
    dag_id character varying(250) NOT NULL,
    warning_type character varying(50) NOT NULL,
    message text NOT NULL,
    "timestamp" timestamp with time zone NOT NULL
);

--
-- Name: dagrun_asset_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dagrun_asset_event (
    dag_run_id integer NOT NULL,
    event_id integer NOT NULL
);

--
-- Name: deadline; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deadline (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_updated_at timestamp with time zone NOT NULL,
    dagrun_id integer,
    deadline_time timestamp with time zone NOT NULL,
    missed boolean NOT NULL,
    callback_id uuid NOT NULL,
    deadline_alert_id uuid
);

--
-- Name: deadline_alert; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deadline_alert (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    serialized_dag_id uuid NOT NULL,
    name character varying(250),
    description text,
    reference json NOT NULL,
    "interval" json NOT NULL,
    callback_def json NOT NULL
);

--
-- Name: hitl_detail; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hitl_detail (
    ti_id uuid NOT NULL,
    options json NOT NULL,
    subject text NOT NULL,
    body text,
    defaults json,
    multiple boolean,
    params json NOT NULL,
    assignees json,
    created_at timestamp with time zone NOT NULL,
    responded_at timestamp with time zone,
    responded_by json,
    chosen_options json,
    params_input json NOT NULL
);

--
-- Name: hitl_detail_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hitl_detail_history (
    ti_history_id uuid NOT NULL,
    options json NOT NULL,
    subject text NOT NULL,
    body text,
    defaults json,
    multiple boolean,
    params json NOT NULL,
    assignees json,
    created_at timestamp with time zone NOT NULL,
    responded_at timestamp with time zone,
    responded_by json,
    chosen_options json,
    params_input json NOT NULL
);

--
-- Name: import_error; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_error (
    id integer NOT NULL,
    "timestamp" timestamp with time zone,
    filename character varying(1024),
    bundle_name character varying(250),
    stacktrace text
);

--
-- Name: import_error_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.import_error_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: import_error_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.import_error_id_seq OWNED BY public.import_error.id;

--
-- Name: job; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.job (
    id integer NOT NULL,
    dag_id character varying(250),
    state character varying(20),
    job_type character varying(30),
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    latest_heartbeat timestamp with time zone,
    executor_class character varying(500),
    hostname character varying(500),
    unixname character varying(1000)
);

--
-- Name: job_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.job_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: job_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.job_id_seq OWNED BY public.job.id;

--
-- Name: log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.log (
    id integer NOT NULL,
    dttm timestamp with time zone,
    dag_id character varying(250),
    task_id character varying(250),
    map_index integer,
    event character varying(60) NOT NULL,
    logical_date timestamp with time zone,
    run_id character varying(250),
    owner character varying(500),
    owner_display_name character varying(500),
    extra text,
    try_number integer
);

--
-- Name: log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.log_id_seq OWNED BY public.log.id;

--
-- Name: log_template; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.log_template (
    id integer NOT NULL,
    filename text NOT NULL,
    elasticsearch_id text NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: log_template_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.log_template_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: log_template_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.log_template_id_seq OWNED BY public.log_template.id;

--
-- Name: partitioned_asset_key_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.partitioned_asset_key_log (
    id integer NOT NULL,
    asset_id integer NOT NULL,
    asset_event_id integer NOT NULL,
    asset_partition_dag_run_id integer NOT NULL,
    source_partition_key character varying(250) NOT NULL,
    target_dag_id character varying(250) NOT NULL,
    target_partition_key character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

--
-- Name: partitioned_asset_key_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.partitioned_asset_key_log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: partitioned_asset_key_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.partitioned_asset_key_log_id_seq OWNED BY public.partitioned_asset_key_log.id;

--
-- Name: rendered_task_instance_fields; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rendered_task_instance_fields (
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    rendered_fields json NOT NULL,
    k8s_pod_yaml json
);

--
-- Name: revoked_token; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.revoked_token (
    jti character varying(32) NOT NULL,
    exp timestamp with time zone NOT NULL
);

--
-- Name: serialized_dag; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.serialized_dag (
    id uuid NOT NULL,
    dag_id character varying(250) NOT NULL,
    data jsonb,
    data_compressed bytea,
    created_at timestamp with time zone NOT NULL,
    last_updated timestamp with time zone NOT NULL,
    dag_hash character varying(32) NOT NULL,
    dag_version_id uuid NOT NULL
);

--
-- Name: slot_pool; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.slot_pool (
    id integer NOT NULL,
    pool character varying(256),
    slots integer NOT NULL,
    description text,
    include_deferred boolean NOT NULL,
    team_name character varying(50)
);

--
-- Name: slot_pool_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.slot_pool_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: slot_pool_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.slot_pool_id_seq OWNED BY public.slot_pool.id;

--
-- Name: task_inlet_asset_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_inlet_asset_reference (
    asset_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: task_instance; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_instance (
    id uuid NOT NULL,
    task_id character varying(250) NOT NULL,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    duration double precision,
    state character varying(20),
    try_number integer NOT NULL,
    max_tries integer DEFAULT '-1'::integer NOT NULL,
    hostname character varying(1000),
    unixname character varying(1000),
    pool character varying(256) NOT NULL,
    pool_slots integer NOT NULL,
    queue character varying(256),
    priority_weight integer,
    operator character varying(1000),
    custom_operator_name character varying(1000),
    queued_dttm timestamp with time zone,
    scheduled_dttm timestamp with time zone,
    queued_by_job_id integer,
    last_heartbeat_at timestamp with time zone,
    pid integer,
    executor character varying(1000),
    executor_config bytea,
    updated_at timestamp with time zone,
    rendered_map_index character varying(250),
    context_carrier jsonb,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id text,
    trigger_id integer,
    trigger_timeout timestamp with time zone,
    next_method character varying(1000),
    next_kwargs jsonb,
    task_display_name character varying(2000),
    dag_version_id uuid,
    retry_delay_override double precision,
    retry_reason character varying(500)
);

--
-- Name: task_instance_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_instance_history (
    task_instance_id uuid NOT NULL,
    task_id character varying(250) NOT NULL,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    try_number integer NOT NULL,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    duration double precision,
    state character varying(20),
    max_tries integer DEFAULT '-1'::integer,
    hostname character varying(1000),
    unixname character varying(1000),
    pool character varying(256) NOT NULL,
    pool_slots integer NOT NULL,
    queue character varying(256),
    priority_weight integer,
    operator character varying(1000),
    custom_operator_name character varying(1000),
    queued_dttm timestamp with time zone,
    scheduled_dttm timestamp with time zone,
    queued_by_job_id integer,
    pid integer,
    executor character varying(1000),
    executor_config bytea,
    updated_at timestamp with time zone,
    rendered_map_index character varying(250),
    context_carrier jsonb,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id text,
    trigger_id integer,
    trigger_timeout timestamp without time zone,
    next_method character varying(1000),
    next_kwargs jsonb,
    task_display_name character varying(2000),
    dag_version_id uuid,
    retry_delay_override double precision,
    retry_reason character varying(500)
);

--
-- Name: task_instance_note; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_instance_note (
    ti_id uuid NOT NULL,
    user_id character varying(128),
    content character varying(1000),
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: task_map; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_map (
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer NOT NULL,
    length integer NOT NULL,
    keys jsonb,
    CONSTRAINT ck_task_map_task_map_length_not_negative CHECK ((length >= 0))
);

--
-- Name: task_outlet_asset_reference; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_outlet_asset_reference (
    asset_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    allow_consumer_teams json,
    allow_global_consumers boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

--
-- Name: task_reschedule; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_reschedule (
    id integer NOT NULL,
    ti_id uuid NOT NULL,
    start_date timestamp with time zone NOT NULL,
    end_date timestamp with time zone NOT NULL,
    duration integer NOT NULL,
    reschedule_date timestamp with time zone NOT NULL
);

--
-- Name: task_reschedule_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.task_reschedule_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: task_reschedule_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.task_reschedule_id_seq OWNED BY public.task_reschedule.id;

--
-- Name: task_state_store; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_state_store (
    id integer NOT NULL,
    dag_run_id integer NOT NULL,
    task_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    key character varying(512) NOT NULL,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    value text NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone
);

--
-- Name: task_state_store_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.task_state_store_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: task_state_store_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.task_state_store_id_seq OWNED BY public.task_state_store.id;

--
-- Name: team; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.team (
    name character varying(50) NOT NULL
);

--
-- Name: trigger; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trigger (
    id integer NOT NULL,
    classpath character varying(1000) NOT NULL,
    kwargs text NOT NULL,
    created_date timestamp with time zone NOT NULL,
    triggerer_id integer,
    queue character varying(256),
    team_name character varying(50)
);

--
-- Name: trigger_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.trigger_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: trigger_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.trigger_id_seq OWNED BY public.trigger.id;

--
-- Name: variable; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.variable (
    id integer NOT NULL,
    key character varying(250) NOT NULL,
    val text NOT NULL,
    description text,
    is_encrypted boolean NOT NULL,
    team_name character varying(50)
);

--
-- Name: variable_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.variable_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: variable_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.variable_id_seq OWNED BY public.variable.id;

--
-- Name: xcom; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.xcom (
    dag_run_id integer NOT NULL,
    task_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    key character varying(512) NOT NULL,
    dag_result boolean,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    value jsonb,
    "timestamp" timestamp with time zone NOT NULL
);

--
-- Name: asset id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset ALTER COLUMN id SET DEFAULT nextval('public.asset_id_seq'::regclass);

--
-- Name: asset_alias id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias ALTER COLUMN id SET DEFAULT nextval('public.asset_alias_id_seq'::regclass);

--
-- Name: asset_event id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_event ALTER COLUMN id SET DEFAULT nextval('public.asset_event_id_seq'::regclass);

--
-- Name: asset_partition_dag_run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_partition_dag_run ALTER COLUMN id SET DEFAULT nextval('public.asset_partition_dag_run_id_seq'::regclass);

--
-- Name: backfill id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill ALTER COLUMN id SET DEFAULT nextval('public.backfill_id_seq'::regclass);

--
-- Name: backfill_dag_run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_dag_run ALTER COLUMN id SET DEFAULT nextval('public.backfill_dag_run_id_seq'::regclass);

--
-- Name: connection id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection ALTER COLUMN id SET DEFAULT nextval('public.connection_id_seq'::regclass);

--
-- Name: dag_run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run ALTER COLUMN id SET DEFAULT nextval('public.dag_run_id_seq'::regclass);

--
-- Name: import_error id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_error ALTER COLUMN id SET DEFAULT nextval('public.import_error_id_seq'::regclass);

--
-- Name: job id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.job ALTER COLUMN id SET DEFAULT nextval('public.job_id_seq'::regclass);

--
-- Name: log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.log ALTER COLUMN id SET DEFAULT nextval('public.log_id_seq'::regclass);

--
-- Name: log_template id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.log_template ALTER COLUMN id SET DEFAULT nextval('public.log_template_id_seq'::regclass);

--
-- Name: partitioned_asset_key_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.partitioned_asset_key_log ALTER COLUMN id SET DEFAULT nextval('public.partitioned_asset_key_log_id_seq'::regclass);

--
-- Name: slot_pool id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slot_pool ALTER COLUMN id SET DEFAULT nextval('public.slot_pool_id_seq'::regclass);

--
-- Name: task_reschedule id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_reschedule ALTER COLUMN id SET DEFAULT nextval('public.task_reschedule_id_seq'::regclass);

--
-- Name: task_state_store id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_state_store ALTER COLUMN id SET DEFAULT nextval('public.task_state_store_id_seq'::regclass);

--
-- Name: trigger id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trigger ALTER COLUMN id SET DEFAULT nextval('public.trigger_id_seq'::regclass);

--
-- Name: variable id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.variable ALTER COLUMN id SET DEFAULT nextval('public.variable_id_seq'::regclass);

--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

--
-- Name: asset_active asset_active_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_active
    ADD CONSTRAINT asset_active_pkey PRIMARY KEY (name, uri);

--
-- Name: asset_alias_asset_event asset_alias_asset_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_pkey PRIMARY KEY (alias_id, event_id);

--
-- Name: asset_alias_asset asset_alias_asset_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_pkey PRIMARY KEY (alias_id, asset_id);

--
-- Name: asset_alias asset_alias_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias
    ADD CONSTRAINT asset_alias_pkey PRIMARY KEY (id);

--
-- Name: asset_event asset_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_event
    ADD CONSTRAINT asset_event_pkey PRIMARY KEY (id);

--
-- Name: asset_partition_dag_run asset_partition_dag_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_partition_dag_run
    ADD CONSTRAINT asset_partition_dag_run_pkey PRIMARY KEY (id);

--
-- Name: asset asset_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset
    ADD CONSTRAINT asset_pkey PRIMARY KEY (id);

--
-- Name: asset_state_store asset_state_store_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_state_store
    ADD CONSTRAINT asset_state_store_pkey PRIMARY KEY (asset_id, key);

--
-- Name: asset_watcher asset_watcher_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_watcher
    ADD CONSTRAINT asset_watcher_pkey PRIMARY KEY (asset_id, trigger_id);

--
-- Name: asset_dag_run_queue assetdagrunqueue_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_dag_run_queue
    ADD CONSTRAINT assetdagrunqueue_pkey PRIMARY KEY (asset_id, target_dag_id);

--
-- Name: backfill_dag_run backfill_dag_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_dag_run
    ADD CONSTRAINT backfill_dag_run_pkey PRIMARY KEY (id);

--
-- Name: backfill backfill_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill
    ADD CONSTRAINT backfill_pkey PRIMARY KEY (id);

--
-- Name: callback callback_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.callback
    ADD CONSTRAINT callback_pkey PRIMARY KEY (id);

--
-- Name: connection connection_conn_id_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection
    ADD CONSTRAINT connection_conn_id_uq UNIQUE (conn_id);

--
-- Name: connection connection_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection
    ADD CONSTRAINT connection_pkey PRIMARY KEY (id);

--
-- Name: connection_test_request connection_test_request_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection_test_request
    ADD CONSTRAINT connection_test_request_pkey PRIMARY KEY (id);

--
-- Name: connection_test_request connection_test_request_token_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection_test_request
    ADD CONSTRAINT connection_test_request_token_uq UNIQUE (token);

--
-- Name: dag_bundle dag_bundle_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_bundle
    ADD CONSTRAINT dag_bundle_pkey PRIMARY KEY (name);

--
-- Name: dag_bundle_team dag_bundle_team_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_bundle_team
    ADD CONSTRAINT dag_bundle_team_pkey PRIMARY KEY (dag_bundle_name, team_name);

--
-- Name: dag_code dag_code_dag_version_id_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_code
    ADD CONSTRAINT dag_code_dag_version_id_uq UNIQUE (dag_version_id);

--
-- Name: dag_code dag_code_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_code
    ADD CONSTRAINT dag_code_pkey PRIMARY KEY (id);

--
-- Name: dag_favorite dag_favorite_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_favorite
    ADD CONSTRAINT dag_favorite_pkey PRIMARY KEY (user_id, dag_id);

--
-- Name: dag_version dag_id_v_name_v_number_unique_constraint; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_version
    ADD CONSTRAINT dag_id_v_name_v_number_unique_constraint UNIQUE (dag_id, version_number);

--
-- Name: dag_owner_attributes dag_owner_attributes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_owner_attributes
    ADD CONSTRAINT dag_owner_attributes_pkey PRIMARY KEY (dag_id, owner);

--
-- Name: dag dag_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag
    ADD CONSTRAINT dag_pkey PRIMARY KEY (dag_id);

--
-- Name: dag_priority_parsing_request dag_priority_parsing_request_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_priority_parsing_request
    ADD CONSTRAINT dag_priority_parsing_request_pkey PRIMARY KEY (id);

--
-- Name: dag_run dag_run_dag_id_logical_date_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date);

--
-- Name: dag_run dag_run_dag_id_run_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id);

--
-- Name: dag_run_note dag_run_note_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run_note
    ADD CONSTRAINT dag_run_note_pkey PRIMARY KEY (dag_run_id);

--
-- Name: dag_run dag_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT dag_run_pkey PRIMARY KEY (id);

--
-- Name: dag_tag dag_tag_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_tag
    ADD CONSTRAINT dag_tag_pkey PRIMARY KEY (name, dag_id);

--
-- Name: dag_version dag_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_version
    ADD CONSTRAINT dag_version_pkey PRIMARY KEY (id);

--
-- Name: dag_warning dag_warning_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_warning
    ADD CONSTRAINT dag_warning_pkey PRIMARY KEY (dag_id, warning_type);

--
-- Name: dagrun_asset_event dagrun_asset_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dagrun_asset_event
    ADD CONSTRAINT dagrun_asset_event_pkey PRIMARY KEY (dag_run_id, event_id);

--
-- Name: deadline_alert deadline_alert_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline_alert
    ADD CONSTRAINT deadline_alert_pkey PRIMARY KEY (id);

--
-- Name: deadline deadline_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline
    ADD CONSTRAINT deadline_pkey PRIMARY KEY (id);

--
-- Name: dag_schedule_asset_alias_reference dsaar_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_pkey PRIMARY KEY (alias_id, dag_id);

--
-- Name: dag_schedule_asset_name_reference dsanr_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_name_reference
    ADD CONSTRAINT dsanr_pkey PRIMARY KEY (name, dag_id);

--
-- Name: dag_schedule_asset_reference dsar_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_pkey PRIMARY KEY (asset_id, dag_id);

--
-- Name: dag_schedule_asset_uri_reference dsaur_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_uri_reference
    ADD CONSTRAINT dsaur_pkey PRIMARY KEY (uri, dag_id);

--
-- Name: hitl_detail_history hitl_detail_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hitl_detail_history
    ADD CONSTRAINT hitl_detail_history_pkey PRIMARY KEY (ti_history_id);

--
-- Name: hitl_detail hitl_detail_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hitl_detail
    ADD CONSTRAINT hitl_detail_pkey PRIMARY KEY (ti_id);

--
-- Name: import_error import_error_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_error
    ADD CONSTRAINT import_error_pkey PRIMARY KEY (id);

--
-- Name: backfill_dag_run ix_bdr_backfill_id_dag_run_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_dag_run
    ADD CONSTRAINT ix_bdr_backfill_id_dag_run_id UNIQUE (backfill_id, dag_run_id);

--
-- Name: job job_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.job
    ADD CONSTRAINT job_pkey PRIMARY KEY (id);

--
-- Name: log log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.log
    ADD CONSTRAINT log_pkey PRIMARY KEY (id);

--
-- Name: log_template log_template_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.log_template
    ADD CONSTRAINT log_template_pkey PRIMARY KEY (id);

--
-- Name: partitioned_asset_key_log partitioned_asset_key_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.partitioned_asset_key_log
    ADD CONSTRAINT partitioned_asset_key_log_pkey PRIMARY KEY (id);

--
-- Name: rendered_task_instance_fields rendered_task_instance_fields_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rendered_task_instance_fields
    ADD CONSTRAINT rendered_task_instance_fields_pkey PRIMARY KEY (dag_id, task_id, run_id, map_index);

--
-- Name: revoked_token revoked_token_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.revoked_token
    ADD CONSTRAINT revoked_token_pkey PRIMARY KEY (jti);

--
-- Name: serialized_dag serialized_dag_dag_version_id_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.serialized_dag
    ADD CONSTRAINT serialized_dag_dag_version_id_uq UNIQUE (dag_version_id);

--
-- Name: serialized_dag serialized_dag_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.serialized_dag
    ADD CONSTRAINT serialized_dag_pkey PRIMARY KEY (id);

--
-- Name: slot_pool slot_pool_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slot_pool
    ADD CONSTRAINT slot_pool_pkey PRIMARY KEY (id);

--
-- Name: slot_pool slot_pool_pool_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slot_pool
    ADD CONSTRAINT slot_pool_pool_uq UNIQUE (pool);

--
-- Name: task_instance task_instance_composite_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance
    ADD CONSTRAINT task_instance_composite_key UNIQUE (dag_id, task_id, run_id, map_index);

--
-- Name: task_instance_history task_instance_history_dtrt_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance_history
    ADD CONSTRAINT task_instance_history_dtrt_uq UNIQUE (dag_id, task_id, run_id, map_index, try_number);

--
-- Name: task_instance_history task_instance_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance_history
    ADD CONSTRAINT task_instance_history_pkey PRIMARY KEY (task_instance_id);

--
-- Name: task_instance_note task_instance_note_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance_note
    ADD CONSTRAINT task_instance_note_pkey PRIMARY KEY (ti_id);

--
-- Name: task_instance task_instance_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance
    ADD CONSTRAINT task_instance_pkey PRIMARY KEY (id);

--
-- Name: task_map task_map_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_map
    ADD CONSTRAINT task_map_pkey PRIMARY KEY (dag_id, task_id, run_id, map_index);

--
-- Name: task_reschedule task_reschedule_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_reschedule
    ADD CONSTRAINT task_reschedule_pkey PRIMARY KEY (id);

--
-- Name: task_state_store task_state_store_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_state_store
    ADD CONSTRAINT task_state_store_pkey PRIMARY KEY (id);

--
-- Name: task_state_store task_state_store_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_state_store
    ADD CONSTRAINT task_state_store_uq UNIQUE (dag_run_id, task_id, map_index, key);

--
-- Name: team team_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.team
    ADD CONSTRAINT team_pkey PRIMARY KEY (name);

--
-- Name: task_inlet_asset_reference tiar_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_inlet_asset_reference
    ADD CONSTRAINT tiar_pkey PRIMARY KEY (asset_id, dag_id, task_id);

--
-- Name: task_outlet_asset_reference toar_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_outlet_asset_reference
    ADD CONSTRAINT toar_pkey PRIMARY KEY (asset_id, dag_id, task_id);

--
-- Name: trigger trigger_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trigger
    ADD CONSTRAINT trigger_pkey PRIMARY KEY (id);

--
-- Name: connection_test_request uq_connection_test_request_active_conn; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection_test_request
    ADD CONSTRAINT uq_connection_test_request_active_conn UNIQUE (active_connection_id);

--
-- Name: variable variable_key_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.variable
    ADD CONSTRAINT variable_key_uq UNIQUE (key);

--
-- Name: variable variable_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.variable
    ADD CONSTRAINT variable_pkey PRIMARY KEY (id);

--
-- Name: xcom xcom_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.xcom
    ADD CONSTRAINT xcom_pkey PRIMARY KEY (dag_run_id, task_id, map_index, key);

--
-- Name: dag_id_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dag_id_state ON public.dag_run USING btree (dag_id, state);

--
-- Name: deadline_callback_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deadline_callback_id_idx ON public.deadline USING btree (callback_id);

--
-- Name: deadline_missed_deadline_time_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deadline_missed_deadline_time_idx ON public.deadline USING btree (missed, deadline_time);

--
-- Name: idx_asset_active_name_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_active_name_unique ON public.asset_active USING btree (name);

--
-- Name: idx_asset_active_uri_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_active_uri_unique ON public.asset_active USING btree (uri);

--
-- Name: idx_asset_alias_asset_alias_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_alias_asset_alias_id ON public.asset_alias_asset USING btree (alias_id);

--
-- Name: idx_asset_alias_asset_asset_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_alias_asset_asset_id ON public.asset_alias_asset USING btree (asset_id);

--
-- Name: idx_asset_alias_asset_event_alias_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_alias_asset_event_alias_id ON public.asset_alias_asset_event USING btree (alias_id);

--
-- Name: idx_asset_alias_asset_event_event_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_alias_asset_event_event_id ON public.asset_alias_asset_event USING btree (event_id);

--
-- Name: idx_asset_alias_name_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_alias_name_unique ON public.asset_alias USING btree (name);

--
-- Name: idx_asset_dag_run_queue_target_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_dag_run_queue_target_dag_id ON public.asset_dag_run_queue USING btree (target_dag_id);

--
-- Name: idx_asset_id_timestamp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_id_timestamp ON public.asset_event USING btree (asset_id, "timestamp");

--
-- Name: idx_asset_name_uri_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_name_uri_unique ON public.asset USING btree (name, uri);

--
-- Name: idx_awm_trigger_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_awm_trigger_id ON public.asset_watcher USING btree (trigger_id);

--
-- Name: idx_connection_test_request_state_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_connection_test_request_state_created_at ON public.connection_test_request USING btree (state, created_at);

--
-- Name: idx_dag_bundle_team_dag_bundle_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_dag_bundle_team_dag_bundle_name ON public.dag_bundle_team USING btree (dag_bundle_name);

--
-- Name: idx_dag_bundle_team_team_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_bundle_team_team_name ON public.dag_bundle_team USING btree (team_name);

--
-- Name: idx_dag_run_created_dag_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_run_created_dag_version_id ON public.dag_run USING btree (created_dag_version_id);

--
-- Name: idx_dag_run_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_run_dag_id ON public.dag_run USING btree (dag_id);

--
-- Name: idx_dag_run_queued_dags; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_run_queued_dags ON public.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'queued'::text);

--
-- Name: idx_dag_run_run_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_run_run_after ON public.dag_run USING btree (run_after);

--
-- Name: idx_dag_run_running_dags; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_run_running_dags ON public.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'running'::text);

--
-- Name: idx_dag_schedule_asset_alias_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_alias_reference_dag_id ON public.dag_schedule_asset_alias_reference USING btree (dag_id);

--
-- Name: idx_dag_schedule_asset_name_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_name_reference_dag_id ON public.dag_schedule_asset_name_reference USING btree (dag_id);

--
-- Name: idx_dag_schedule_asset_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_reference_dag_id ON public.dag_schedule_asset_reference USING btree (dag_id);

--
-- Name: idx_dag_schedule_asset_uri_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_uri_reference_dag_id ON public.dag_schedule_asset_uri_reference USING btree (dag_id);

--
-- Name: idx_dag_tag_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_tag_dag_id ON public.dag_tag USING btree (dag_id);

--
-- Name: idx_dag_warning_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dag_warning_dag_id ON public.dag_warning USING btree (dag_id);

--
-- Name: idx_dagrun_asset_events_dag_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dagrun_asset_events_dag_run_id ON public.dagrun_asset_event USING btree (dag_run_id);

--
-- Name: idx_dagrun_asset_events_event_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_dagrun_asset_events_event_id ON public.dagrun_asset_event USING btree (event_id);

--
-- Name: idx_job_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_job_dag_id ON public.job USING btree (dag_id);

--
-- Name: idx_job_state_heartbeat; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_job_state_heartbeat ON public.job USING btree (state, latest_heartbeat);

--
-- Name: idx_log_dttm; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_log_dttm ON public.log USING btree (dttm);

--
-- Name: idx_log_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_log_event ON public.log USING btree (event);

--
-- Name: idx_log_task_instance; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_log_task_instance ON public.log USING btree (dag_id, task_id, run_id, map_index, try_number);

--
-- Name: idx_next_dagrun_create_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_next_dagrun_create_after ON public.dag USING btree (next_dagrun_create_after);

--
-- Name: idx_pakl_apdr_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_pakl_apdr_id ON public.partitioned_asset_key_log USING btree (asset_partition_dag_run_id);

--
-- Name: idx_revoked_token_exp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_revoked_token_exp ON public.revoked_token USING btree (exp);

--
-- Name: idx_task_inlet_asset_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_task_inlet_asset_reference_dag_id ON public.task_inlet_asset_reference USING btree (dag_id);

--
-- Name: idx_task_outlet_asset_reference_dag_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_task_outlet_asset_reference_dag_id ON public.task_outlet_asset_reference USING btree (dag_id);

--
-- Name: idx_task_reschedule_ti_id_id_desc; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_task_reschedule_ti_id_id_desc ON public.task_reschedule USING btree (ti_id, id DESC);

--
-- Name: idx_task_state_store_expires_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_task_state_store_expires_at ON public.task_state_store USING btree (expires_at);

--
-- Name: idx_task_state_store_lookup; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_task_state_store_lookup ON public.task_state_store USING btree (dag_id, run_id, task_id, map_index);

--
-- Name: idx_tih_dag_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_tih_dag_run ON public.task_instance_history USING btree (dag_id, run_id);

--
-- Name: idx_trigger_team_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_trigger_team_name ON public.trigger USING btree (team_name);

--
-- Name: idx_xcom_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_xcom_key ON public.xcom USING btree (key);

--
-- Name: idx_xcom_task_instance; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_xcom_task_instance ON public.xcom USING btree (dag_id, task_id, run_id, map_index);

--
-- Name: job_type_heart; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX job_type_heart ON public.job USING btree (job_type, latest_heartbeat);

--
-- Name: ti_dag_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_dag_run ON public.task_instance USING btree (dag_id, run_id);

--
-- Name: ti_dag_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_dag_state ON public.task_instance USING btree (dag_id, state);

--
-- Name: ti_dag_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_dag_version_id ON public.task_instance USING btree (dag_version_id);

--
-- Name: ti_heartbeat; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_heartbeat ON public.task_instance USING btree (last_heartbeat_at);

--
-- Name: ti_pool; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_pool ON public.task_instance USING btree (pool, state, priority_weight);

--
-- Name: ti_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_state ON public.task_instance USING btree (state);

--
-- Name: ti_state_lkp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_state_lkp ON public.task_instance USING btree (dag_id, task_id, run_id, state);

--
-- Name: ti_trigger_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ti_trigger_id ON public.task_instance USING btree (trigger_id);

--
-- Name: asset_dag_run_queue adrq_asset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_dag_run_queue
    ADD CONSTRAINT adrq_asset_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: asset_dag_run_queue adrq_dag_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_dag_run_queue
    ADD CONSTRAINT adrq_dag_fkey FOREIGN KEY (target_dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: asset_partition_dag_run apdr_created_dag_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_partition_dag_run
    ADD CONSTRAINT apdr_created_dag_run_id_fkey FOREIGN KEY (created_dag_run_id) REFERENCES public.dag_run(id) ON DELETE CASCADE;

--
-- Name: asset_active asset_active_asset_name_uri_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_active
    ADD CONSTRAINT asset_active_asset_name_uri_fkey FOREIGN KEY (name, uri) REFERENCES public.asset(name, uri) ON DELETE CASCADE;

--
-- Name: asset_alias_asset asset_alias_asset_alias_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES public.asset_alias(id) ON DELETE CASCADE;

--
-- Name: asset_alias_asset asset_alias_asset_asset_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: asset_alias_asset_event asset_alias_asset_event_alias_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES public.asset_alias(id) ON DELETE CASCADE;

--
-- Name: asset_alias_asset_event asset_alias_asset_event_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.asset_event(id) ON DELETE CASCADE;

--
-- Name: asset_state_store asset_state_store_asset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_state_store
    ADD CONSTRAINT asset_state_store_asset_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: asset_watcher awm_asset_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_watcher
    ADD CONSTRAINT awm_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: asset_watcher awm_trigger_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_watcher
    ADD CONSTRAINT awm_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES public.trigger(id) ON DELETE CASCADE;

--
-- Name: backfill_dag_run bdr_backfill_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_dag_run
    ADD CONSTRAINT bdr_backfill_fkey FOREIGN KEY (backfill_id) REFERENCES public.backfill(id) ON DELETE CASCADE;

--
-- Name: backfill_dag_run bdr_dag_run_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_dag_run
    ADD CONSTRAINT bdr_dag_run_fkey FOREIGN KEY (dag_run_id) REFERENCES public.dag_run(id) ON DELETE SET NULL;

--
-- Name: callback callback_trigger_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.callback
    ADD CONSTRAINT callback_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES public.trigger(id);

--
-- Name: connection connection_team_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connection
    ADD CONSTRAINT connection_team_name_fkey FOREIGN KEY (team_name) REFERENCES public.team(name) ON DELETE SET NULL;

--
-- Name: dag_run created_dag_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT created_dag_version_id_fkey FOREIGN KEY (created_dag_version_id) REFERENCES public.dag_version(id) ON DELETE SET NULL;

--
-- Name: dag_owner_attributes dag.dag_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_owner_attributes
    ADD CONSTRAINT "dag.dag_id" FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag dag_bundle_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag
    ADD CONSTRAINT dag_bundle_name_fkey FOREIGN KEY (bundle_name) REFERENCES public.dag_bundle(name);

--
-- Name: dag_bundle_team dag_bundle_team_dag_bundle_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_bundle_team
    ADD CONSTRAINT dag_bundle_team_dag_bundle_name_fkey FOREIGN KEY (dag_bundle_name) REFERENCES public.dag_bundle(name) ON DELETE CASCADE;

--
-- Name: dag_bundle_team dag_bundle_team_team_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_bundle_team
    ADD CONSTRAINT dag_bundle_team_team_name_fkey FOREIGN KEY (team_name) REFERENCES public.team(name) ON DELETE CASCADE;

--
-- Name: dag_code dag_code_dag_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_code
    ADD CONSTRAINT dag_code_dag_version_id_fkey FOREIGN KEY (dag_version_id) REFERENCES public.dag_version(id) ON DELETE CASCADE;

--
-- Name: dag_favorite dag_favorite_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_favorite
    ADD CONSTRAINT dag_favorite_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag_run dag_run_backfill_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT dag_run_backfill_id_fkey FOREIGN KEY (backfill_id) REFERENCES public.backfill(id);

--
-- Name: dag_run_note dag_run_note_dr_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run_note
    ADD CONSTRAINT dag_run_note_dr_fkey FOREIGN KEY (dag_run_id) REFERENCES public.dag_run(id) ON DELETE CASCADE;

--
-- Name: dag_tag dag_tag_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_tag
    ADD CONSTRAINT dag_tag_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag_version dag_version_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_version
    ADD CONSTRAINT dag_version_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dagrun_asset_event dagrun_asset_event_dag_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dagrun_asset_event
    ADD CONSTRAINT dagrun_asset_event_dag_run_id_fkey FOREIGN KEY (dag_run_id) REFERENCES public.dag_run(id) ON DELETE CASCADE;

--
-- Name: dagrun_asset_event dagrun_asset_event_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dagrun_asset_event
    ADD CONSTRAINT dagrun_asset_event_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.asset_event(id) ON DELETE CASCADE;

--
-- Name: dag_warning dcw_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_warning
    ADD CONSTRAINT dcw_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: deadline_alert deadline_alert_serialized_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline_alert
    ADD CONSTRAINT deadline_alert_serialized_dag_id_fkey FOREIGN KEY (serialized_dag_id) REFERENCES public.serialized_dag(id) ON DELETE CASCADE;

--
-- Name: deadline deadline_callback_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline
    ADD CONSTRAINT deadline_callback_id_fkey FOREIGN KEY (callback_id) REFERENCES public.callback(id) ON DELETE CASCADE;

--
-- Name: deadline deadline_dagrun_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline
    ADD CONSTRAINT deadline_dagrun_id_fkey FOREIGN KEY (dagrun_id) REFERENCES public.dag_run(id) ON DELETE CASCADE;

--
-- Name: deadline deadline_deadline_alert_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deadline
    ADD CONSTRAINT deadline_deadline_alert_id_fkey FOREIGN KEY (deadline_alert_id) REFERENCES public.deadline_alert(id) ON DELETE SET NULL;

--
-- Name: dag_schedule_asset_alias_reference dsaar_asset_alias_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_asset_alias_fkey FOREIGN KEY (alias_id) REFERENCES public.asset_alias(id) ON DELETE CASCADE;

--
-- Name: dag_schedule_asset_alias_reference dsaar_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag_schedule_asset_name_reference dsanr_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_name_reference
    ADD CONSTRAINT dsanr_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag_schedule_asset_reference dsar_asset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_asset_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: dag_schedule_asset_reference dsar_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: dag_schedule_asset_uri_reference dsaur_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_schedule_asset_uri_reference
    ADD CONSTRAINT dsaur_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: hitl_detail_history hitl_detail_history_tih_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hitl_detail_history
    ADD CONSTRAINT hitl_detail_history_tih_fkey FOREIGN KEY (ti_history_id) REFERENCES public.task_instance_history(task_instance_id) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: hitl_detail hitl_detail_ti_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hitl_detail
    ADD CONSTRAINT hitl_detail_ti_fkey FOREIGN KEY (ti_id) REFERENCES public.task_instance(id) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: rendered_task_instance_fields rtif_ti_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rendered_task_instance_fields
    ADD CONSTRAINT rtif_ti_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES public.task_instance(dag_id, task_id, run_id, map_index) ON DELETE CASCADE;

--
-- Name: serialized_dag serialized_dag_dag_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.serialized_dag
    ADD CONSTRAINT serialized_dag_dag_version_id_fkey FOREIGN KEY (dag_version_id) REFERENCES public.dag_version(id) ON DELETE CASCADE;

--
-- Name: slot_pool slot_pool_team_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slot_pool
    ADD CONSTRAINT slot_pool_team_name_fkey FOREIGN KEY (team_name) REFERENCES public.team(name) ON DELETE SET NULL;

--
-- Name: task_instance task_instance_dag_run_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance
    ADD CONSTRAINT task_instance_dag_run_fkey FOREIGN KEY (dag_id, run_id) REFERENCES public.dag_run(dag_id, run_id) ON DELETE CASCADE;

--
-- Name: task_instance task_instance_dag_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance
    ADD CONSTRAINT task_instance_dag_version_id_fkey FOREIGN KEY (dag_version_id) REFERENCES public.dag_version(id) ON DELETE RESTRICT;

--
-- Name: task_instance_history task_instance_history_ti_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance_history
    ADD CONSTRAINT task_instance_history_ti_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES public.task_instance(dag_id, task_id, run_id, map_index) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: dag_run task_instance_log_template_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dag_run
    ADD CONSTRAINT task_instance_log_template_id_fkey FOREIGN KEY (log_template_id) REFERENCES public.log_template(id);

--
-- Name: task_instance_note task_instance_note_ti_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance_note
    ADD CONSTRAINT task_instance_note_ti_fkey FOREIGN KEY (ti_id) REFERENCES public.task_instance(id) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: task_instance task_instance_trigger_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_instance
    ADD CONSTRAINT task_instance_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES public.trigger(id) ON DELETE CASCADE;

--
-- Name: task_map task_map_task_instance_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_map
    ADD CONSTRAINT task_map_task_instance_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES public.task_instance(dag_id, task_id, run_id, map_index) ON UPDATE CASCADE ON DELETE CASCADE;

--
-- Name: task_reschedule task_reschedule_ti_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_reschedule
    ADD CONSTRAINT task_reschedule_ti_fkey FOREIGN KEY (ti_id) REFERENCES public.task_instance(id) ON DELETE CASCADE;

--
-- Name: task_state_store task_state_store_dag_run_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_state_store
    ADD CONSTRAINT task_state_store_dag_run_fkey FOREIGN KEY (dag_run_id) REFERENCES public.dag_run(id) ON DELETE CASCADE;

--
-- Name: task_inlet_asset_reference tiar_asset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_inlet_asset_reference
    ADD CONSTRAINT tiar_asset_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: task_inlet_asset_reference tiar_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_inlet_asset_reference
    ADD CONSTRAINT tiar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: task_outlet_asset_reference toar_asset_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_outlet_asset_reference
    ADD CONSTRAINT toar_asset_fkey FOREIGN KEY (asset_id) REFERENCES public.asset(id) ON DELETE CASCADE;

--
-- Name: task_outlet_asset_reference toar_dag_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_outlet_asset_reference
    ADD CONSTRAINT toar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES public.dag(dag_id) ON DELETE CASCADE;

--
-- Name: trigger trigger_team_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trigger
    ADD CONSTRAINT trigger_team_name_fkey FOREIGN KEY (team_name) REFERENCES public.team(name) ON DELETE SET NULL;

--
-- Name: variable variable_team_name_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.variable
    ADD CONSTRAINT variable_team_name_fkey FOREIGN KEY (team_name) REFERENCES public.team(name) ON DELETE SET NULL;

--
-- Name: xcom xcom_task_instance_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.xcom
    ADD CONSTRAINT xcom_task_instance_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES public.task_instance(dag_id, task_id, run_id, map_index) ON DELETE CASCADE;

--
-- PostgreSQL database dump complete
--

--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alembic_version (version_num) VALUES ('d2f4e1b3c5a7');

--
-- Data for Name: log_template; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.log_template (id, filename, elasticsearch_id, created_at) VALUES (1, '{{ ti.dag_id }}/{{ ti.task_id }}/{{ ts }}/{{ try_number }}.log', '{dag_id}-{task_id}-{logical_date}-{try_number}', '2000-01-01 00:00:00+00');
INSERT INTO public.log_template (id, filename, elasticsearch_id, created_at) VALUES (2, 'dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/{% if ti.map_index >= 0 %}map_index={{ ti.map_index }}/{% endif %}attempt={{ try_number|default(ti.try_number) }}.log', '{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}', '2000-01-01 00:00:00+00');

--
-- Data for Name: slot_pool; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.slot_pool (id, pool, slots, description, include_deferred, team_name) VALUES (1, 'default_pool', 128, 'Default pool', false, NULL);

--
-- Name: log_template_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.log_template_id_seq', 2, true);

--
-- Name: slot_pool_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.slot_pool_id_seq', 1, true);

--
-- PostgreSQL database dump complete
--

