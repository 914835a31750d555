// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_host.ko's regions: attach a shmem/memfd file (check, charge, pin,
 * map), find it by name, remove it, and the in-kernel API of
 * <linux/ivshmem_host.h>.
 *
 * Pages are pinned with shmem_read_mapping_page_gfp() (a page reference each)
 * and mapped write-back with vmap(). Writes through the vmap leave no dirty
 * bit in any page table, so removal marks every page dirty before dropping
 * the reference. A pinned page cannot be reclaimed, migrated or collapsed
 * (each checks the page count), so it leaves the file's mapping only when
 * the file is truncated or a hole is punched in it: ivshmem_host_watch.c
 * notices, and ivshmem_host_check_pages() removes the region.
 */
#include <linux/bitmap.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "ivshmem_compat.h"
#include "ivshmem_host_priv.h"

#define IVSHMEM_HOST_MAX_SIZE	(16ULL << 30)
#define IVSHMEM_HOST_SEALS	(F_SEAL_SHRINK | F_SEAL_GROW)

/* Attached regions by name; the list holds no reference. */
static LIST_HEAD(regions);
static DEFINE_MUTEX(regions_lock);

static void region_release(struct kref *ref)
{
	struct ivshmem_host_region *r = container_of(ref, struct ivshmem_host_region, ref);

	xa_destroy(&r->peers);
	bitmap_free(r->joined);
	kfree(r);
}

/* ---- attach ------------------------------------------------------------------ */

/* What a file must be to become a region; its size in @size. */
static int region_check_file(struct file *file, u32 flags, u64 *size)
{
	struct inode *inode = file_inode(file);
	unsigned int seals;

	if (!S_ISREG(inode->i_mode) || !file->f_mapping || !shmem_mapping(file->f_mapping))
		return -EINVAL;
	if ((file->f_mode & (FMODE_READ | FMODE_WRITE)) != (FMODE_READ | FMODE_WRITE))
		return -EACCES;
	if (flags & IVSHMEM_HOST_REQUIRE_SEALS) {
		/* Seals only grow; a tmpfs file that is no memfd has F_SEAL_SEAL alone. */
		seals = READ_ONCE(SHMEM_I(inode)->seals);
		if ((seals & IVSHMEM_HOST_SEALS) != IVSHMEM_HOST_SEALS)
			return -EPERM;
	}
	*size = i_size_read(inode);
	if (!*size || !PAGE_ALIGNED(*size))
		return -EINVAL;
	if (*size > IVSHMEM_HOST_MAX_SIZE)
		return -EFBIG;
	return 0;
}

static void region_unpin(struct ivshmem_host_region *r, unsigned long npinned)
{
	unsigned long i;

	for (i = 0; i < npinned; i++) {
		set_page_dirty_lock(r->pages[i]);
		put_page(r->pages[i]);
	}
	kvfree(r->pages);
	r->pages = NULL;
}

static int region_pin(struct ivshmem_host_region *r, struct file *file)
{
	struct address_space *mapping = file->f_mapping;
	struct page *page;
	unsigned long i;

	r->pages = kvcalloc(r->npages, sizeof(*r->pages), GFP_KERNEL);
	if (!r->pages)
		return -ENOMEM;
	for (i = 0; i < r->npages; i++) {
		/* Up to 16 GiB: let a killed attacher go. */
		if (fatal_signal_pending(current))
			page = ERR_PTR(-EINTR);
		else
			page = shmem_read_mapping_page_gfp(mapping, i, mapping_gfp_mask(mapping));
		if (IS_ERR(page)) {
			region_unpin(r, i);
			return PTR_ERR(page);
		}
		r->pages[i] = page;
		cond_resched();
	}
	return 0;
}

static int region_map(struct ivshmem_host_region *r, struct file *file)
{
	int ret;

	ret = account_locked_vm(current->mm, r->npages, true);
	if (ret)
		return ret;
	ret = region_pin(r, file);
	if (ret)
		goto out_unaccount;
	r->addr = vmap(r->pages, r->npages, VM_MAP, PAGE_KERNEL);
	if (!r->addr) {
		ret = -ENOMEM;
		goto out_unpin;
	}
	mmgrab(current->mm);
	r->mm = current->mm;
	r->inode = igrab(file_inode(file));
	r->mapping = file->f_mapping;
	return 0;

out_unpin:
	region_unpin(r, r->npages);
out_unaccount:
	account_locked_vm(current->mm, r->npages, false);
	return ret;
}

static void region_unmap(struct ivshmem_host_region *r)
{
	vunmap(r->addr);
	r->addr = NULL;
	region_unpin(r, r->npages);
	/* The owner may have exited: there is nothing left to uncharge then. */
	if (mmget_not_zero(r->mm)) {
		account_locked_vm(r->mm, r->npages, false);
		mmput(r->mm);
	}
	mmdrop(r->mm);
	r->mm = NULL;
	iput(r->inode);
	r->inode = NULL;
	r->mapping = NULL;
}

static struct ivshmem_host_region *region_find(const char *name)
{
	struct ivshmem_host_region *r;

	lockdep_assert_held(&regions_lock);
	list_for_each_entry(r, &regions, node)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

static struct ivshmem_host_region *region_alloc(const struct ivshmem_host_attach *req, u64 size)
{
	struct ivshmem_host_region *r;
	unsigned int i;

	r = kzalloc(struct_size(r, own, req->nvectors), GFP_KERNEL);
	if (!r)
		return NULL;
	r->joined = bitmap_zalloc(IVSHMEM_HOST_MAX_PEER + 1, GFP_KERNEL);
	if (!r->joined) {
		kfree(r);
		return NULL;
	}
	r->nvectors = req->nvectors;
	kref_init(&r->ref);
	INIT_LIST_HEAD(&r->node);
	strscpy(r->name, req->name, sizeof(r->name));
	r->flags = req->flags;
	r->own_id = req->own_id;
	r->size = size;
	r->npages = size >> PAGE_SHIFT;
	mutex_init(&r->lock);
	mutex_init(&r->remove_lock);
	mutex_init(&r->peer_lock);
	xa_init(&r->peers);
	spin_lock_init(&r->cb_lock);
	atomic64_set(&r->own_events, 0);
	for (i = 0; i < r->nvectors; i++) {
		r->own[i].region = r;
		r->own[i].vector = i;
	}
	return r;
}

/* Does the file still hold every pinned page, and cover the region? */
static bool region_pages_lost(struct ivshmem_host_region *r)
{
	unsigned long i;

	if (i_size_read(r->inode) < r->size)
		return true;
	for (i = 0; i < r->npages; i++) {
		/* Truncation (and a punched hole) clears the folio's mapping. */
		if (READ_ONCE(page_folio(r->pages[i])->mapping) != r->mapping)
			return true;
		if (!(i % 4096))
			cond_resched();
	}
	return false;
}

/* @req is validated by the caller except for the fd. */
struct ivshmem_host_region *ivshmem_host_attach(const struct ivshmem_host_attach *req)
{
	struct ivshmem_host_region *r;
	struct file *file;
	u64 size;
	int ret;

	file = fget(req->fd);
	if (!file)
		return ERR_PTR(-EBADF);
	ret = region_check_file(file, req->flags, &size);
	if (ret)
		goto out_fput;
	r = region_alloc(req, size);
	if (!r) {
		ret = -ENOMEM;
		goto out_fput;
	}
	ret = region_map(r, file);
	if (ret)
		goto out_free;
	fput(file);
	file = NULL;

	/* A check queued from here on waits, then finds the region listed or removed. */
	mutex_lock(&r->remove_lock);
	ret = ivshmem_host_watch_start(r);
	/* A hole punched while we were pinning went unseen: look once now. */
	if (!ret && region_pages_lost(r))
		ret = -EAGAIN;
	if (!ret) {
		mutex_lock(&regions_lock);
		if (region_find(r->name))
			ret = -EEXIST;
		else
			list_add_tail(&r->node, &regions);
		mutex_unlock(&regions_lock);
	}
	if (ret) {
		ivshmem_host_watch_stop(r);
		region_unmap(r);
		r->removed = true;
	}
	mutex_unlock(&r->remove_lock);
	if (!ret)
		return r;
out_free:
	kref_put(&r->ref, region_release);
out_fput:
	if (file)
		fput(file);
	return ERR_PTR(ret);
}

/* ---- removal ----------------------------------------------------------------- */

/*
 * In order: hide the region from ivshmem_host_get(), mark it gone (every call
 * now fails), stop watching the file, run the remove callback, clear the peer
 * callback, unbind every eventfd, then dirty, unmap and unpin the pages.
 */
static void region_remove_locked(struct ivshmem_host_region *r)
{
	ivshmem_host_remove_cb cb;
	void *data;

	lockdep_assert_held(&r->remove_lock);
	mutex_lock(&regions_lock);
	list_del_init(&r->node);
	mutex_unlock(&regions_lock);

	mutex_lock(&r->lock);
	WRITE_ONCE(r->gone, true);
	cb = r->remove_cb;
	data = r->remove_data;
	r->remove_cb = NULL;
	mutex_unlock(&r->lock);
	ivshmem_host_watch_stop(r);
	/* Outside @lock: the callback may clear its vector callbacks. */
	if (cb) {
		WRITE_ONCE(r->remove_running, current);
		cb(data);
		WRITE_ONCE(r->remove_running, NULL);
	}
	ivshmem_host_peer_clear(r);

	mutex_lock(&r->lock);
	ivshmem_host_unbind_all(r);
	mutex_unlock(&r->lock);
	region_unmap(r);
	r->removed = true;
}

/* The attaching file is being released; the caller still drops its reference. */
void ivshmem_host_remove(struct ivshmem_host_region *r)
{
	mutex_lock(&r->remove_lock);
	if (!r->removed)
		region_remove_locked(r);
	mutex_unlock(&r->remove_lock);
}

void ivshmem_host_check_pages(struct ivshmem_host_region *r)
{
	mutex_lock(&r->remove_lock);
	if (!r->removed && region_pages_lost(r)) {
		pr_info("ivshmem_host: region %s: its file lost pages (a hole punched, or shrunk): removing it\n",
			r->name);
		region_remove_locked(r);
	}
	mutex_unlock(&r->remove_lock);
}

/* ---- in-kernel API ------------------------------------------------------------- */

struct ivshmem_host_region *ivshmem_host_get(const char *name)
{
	struct ivshmem_host_region *r;

	mutex_lock(&regions_lock);
	r = region_find(name);
	if (r)
		kref_get(&r->ref);
	mutex_unlock(&regions_lock);
	return r ?: ERR_PTR(-ENODEV);
}
EXPORT_SYMBOL_GPL(ivshmem_host_get);

void ivshmem_host_put(struct ivshmem_host_region *r)
{
	kref_put(&r->ref, region_release);
}
EXPORT_SYMBOL_GPL(ivshmem_host_put);

int ivshmem_host_region(struct ivshmem_host_region *r, void **addr, u64 *size)
{
	int ret = 0;

	mutex_lock(&r->lock);
	if (r->gone) {
		ret = -ENODEV;
	} else {
		*addr = r->addr;
		*size = r->size;
	}
	mutex_unlock(&r->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_region);

int ivshmem_host_info(struct ivshmem_host_region *r, struct ivshmem_host_info *info)
{
	int ret = 0;

	memset(info, 0, sizeof(*info));
	mutex_lock(&r->lock);
	if (r->gone) {
		ret = -ENODEV;
	} else {
		info->abi_version = IVSHMEM_HOST_ABI_VERSION;
		info->flags = r->flags;
		info->own_id = r->own_id;
		info->nvectors = r->nvectors;
		info->size = r->size;
		info->own_events = atomic64_read(&r->own_events);
		memcpy(info->name, r->name, sizeof(info->name));
	}
	mutex_unlock(&r->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_info);

int ivshmem_host_own_id(struct ivshmem_host_region *r)
{
	return READ_ONCE(r->gone) ? -ENODEV : r->own_id;
}
EXPORT_SYMBOL_GPL(ivshmem_host_own_id);

int ivshmem_host_set_remove_callback(struct ivshmem_host_region *r,
				     ivshmem_host_remove_cb cb, void *data)
{
	int ret = 0;

	mutex_lock(&r->lock);
	if (cb && r->gone)
		ret = -ENODEV;
	else if (cb && r->remove_cb)
		ret = -EBUSY;
	else
		r->remove_cb = cb;
	if (!ret)
		r->remove_data = data;
	mutex_unlock(&r->lock);
	/*
	 * A removal may have taken the old callback just before: wait for it
	 * (it runs under @remove_lock), so the caller's module may unload once
	 * this returns. Not from inside the callback itself, which holds it.
	 */
	if (!cb && READ_ONCE(r->remove_running) != current) {
		mutex_lock(&r->remove_lock);
		mutex_unlock(&r->remove_lock);
	}
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_set_remove_callback);
