// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem.ko interrupts: every MSI-X vector the doorbell device offers, each
 * delivered three ways at once:
 *   - vector fds (IVSHMEM_IOCTL_VECTOR_FD): poll, then read a count;
 *   - one bound eventfd per vector (IVSHMEM_IOCTL_BIND_EVENTFD);
 *   - one in-kernel callback per vector (ivshmem_dev_set_callback()).
 * QEMU's ivshmem-doorbell never raises INTx, so without MSI-X there is nothing.
 */
#include <linux/anon_inodes.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/interrupt.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "ivshmem_compat.h"
#include "ivshmem_priv.h"

static irqreturn_t ivshmem_irq(int irq, void *arg)
{
	struct ivshmem_vector *v = arg;

	atomic64_inc(&v->count);
	wake_up_all(&v->wait);
	spin_lock(&v->lock);
	if (v->trigger)
		eventfd_signal(v->trigger);
	if (v->cb)
		v->cb(v->cb_data, v->index);
	spin_unlock(&v->lock);
	return IRQ_HANDLED;
}

int ivshmem_irq_setup(struct ivshmem_dev *idev)
{
	struct pci_dev *pdev = idev->pdev;
	int want = pci_msix_vec_count(pdev);
	int nvec, i, ret;

	if (want <= 0)
		return 0;	/* ivshmem-plain: no MSI-X capability, no doorbell */
	idev->vectors = kcalloc(want, sizeof(*idev->vectors), GFP_KERNEL);
	if (!idev->vectors)
		return -ENOMEM;
	for (i = 0; i < want; i++) {
		struct ivshmem_vector *v = &idev->vectors[i];

		v->idev = idev;
		v->index = i;
		atomic64_set(&v->count, 0);
		init_waitqueue_head(&v->wait);
		spin_lock_init(&v->lock);
	}
	/* All or nothing: a peer addresses vectors by number, so a partial set would lie. */
	nvec = pci_alloc_irq_vectors(pdev, want, want, PCI_IRQ_MSIX);
	if (nvec < 0) {
		pci_err(pdev, "cannot enable %d MSI-X vectors: %d\n", want, nvec);
		return nvec;
	}
	idev->nvectors = nvec;
	for (i = 0; i < nvec; i++) {
		struct ivshmem_vector *v = &idev->vectors[i];

		snprintf(v->irq_name, sizeof(v->irq_name), "ivshmem%u-%d", idev->index, i);
		ret = request_irq(pci_irq_vector(pdev, i), ivshmem_irq, 0, v->irq_name, v);
		if (ret) {
			pci_err(pdev, "cannot request vector %d: %d\n", i, ret);
			ivshmem_irq_teardown(idev);
			return ret;
		}
		v->irq = pci_irq_vector(pdev, i);
	}
	return 0;
}

/* Free the interrupts and drop every consumer; waiters wake up and see @gone. */
void ivshmem_irq_teardown(struct ivshmem_dev *idev)
{
	unsigned int i;

	for (i = 0; i < idev->nvectors; i++) {
		struct ivshmem_vector *v = &idev->vectors[i];
		struct eventfd_ctx *trigger;

		if (v->irq) {
			free_irq(v->irq, v);	/* waits for a running handler */
			v->irq = 0;
		}
		spin_lock_irq(&v->lock);
		trigger = v->trigger;
		v->trigger = NULL;
		v->trigger_owner = NULL;
		v->cb = NULL;
		v->cb_data = NULL;
		spin_unlock_irq(&v->lock);
		if (trigger)
			eventfd_ctx_put(trigger);
		wake_up_all(&v->wait);
	}
	if (idev->nvectors)
		pci_free_irq_vectors(idev->pdev);
}

/* A device file closes: the eventfds it bound stop being signalled. */
void ivshmem_irq_release_file(struct ivshmem_dev *idev, struct file *filp)
{
	unsigned int i;

	for (i = 0; i < idev->nvectors; i++) {
		struct ivshmem_vector *v = &idev->vectors[i];
		struct eventfd_ctx *trigger = NULL;

		spin_lock_irq(&v->lock);
		if (v->trigger_owner == filp) {
			trigger = v->trigger;
			v->trigger = NULL;
			v->trigger_owner = NULL;
		}
		spin_unlock_irq(&v->lock);
		if (trigger)
			eventfd_ctx_put(trigger);
	}
}

/* ---- vector fds ------------------------------------------------------------ */

struct ivshmem_vector_file {
	struct ivshmem_dev *idev;	/* holds a reference */
	struct ivshmem_vector *vec;
	atomic64_t seen;		/* vec->count at the last read */
};

static bool ivshmem_vector_pending(struct ivshmem_vector_file *vf)
{
	return atomic64_read(&vf->vec->count) != atomic64_read(&vf->seen) ||
	       READ_ONCE(vf->idev->gone);
}

static ssize_t ivshmem_vector_read(struct file *filp, char __user *buf, size_t len,
				   loff_t *ppos)
{
	struct ivshmem_vector_file *vf = filp->private_data;
	s64 seen, now;
	u64 n;
	int ret;

	if (len < sizeof(n))
		return -EINVAL;
	for (;;) {
		if (READ_ONCE(vf->idev->gone))
			return -ENODEV;
		seen = atomic64_read(&vf->seen);
		now = atomic64_read(&vf->vec->count);
		if (now != seen) {
			/* Two readers of one fd: only one of them gets this batch. */
			if (atomic64_cmpxchg(&vf->seen, seen, now) == seen)
				break;
			continue;
		}
		if (filp->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(vf->vec->wait, ivshmem_vector_pending(vf));
		if (ret)
			return ret;
	}
	n = now - seen;
	if (copy_to_user(buf, &n, sizeof(n)))
		return -EFAULT;
	return sizeof(n);
}

static __poll_t ivshmem_vector_poll(struct file *filp, poll_table *wait)
{
	struct ivshmem_vector_file *vf = filp->private_data;

	poll_wait(filp, &vf->vec->wait, wait);
	if (READ_ONCE(vf->idev->gone))
		return EPOLLERR | EPOLLHUP;
	if (atomic64_read(&vf->vec->count) != atomic64_read(&vf->seen))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

static int ivshmem_vector_release(struct inode *inode, struct file *filp)
{
	struct ivshmem_vector_file *vf = filp->private_data;

	kref_put(&vf->idev->ref, ivshmem_dev_release);
	kfree(vf);
	return 0;
}

static const struct file_operations ivshmem_vector_fops = {
	.owner = THIS_MODULE,
	.read = ivshmem_vector_read,
	.poll = ivshmem_vector_poll,
	.release = ivshmem_vector_release,
	.llseek = noop_llseek,
};

/* Called with idev->lock held for reading and the device present. */
long ivshmem_ioctl_vector_fd(struct ivshmem_dev *idev, void __user *arg)
{
	struct ivshmem_vector_fd req;
	struct ivshmem_vector_file *vf;
	int flags = O_RDONLY | O_CLOEXEC;
	int fd;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!idev->doorbell)
		return -EOPNOTSUPP;
	if (req.reserved || (req.flags & ~IVSHMEM_VECTOR_FD_NONBLOCK) ||
	    req.vector >= idev->nvectors)
		return -EINVAL;
	if (req.flags & IVSHMEM_VECTOR_FD_NONBLOCK)
		flags |= O_NONBLOCK;
	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return -ENOMEM;
	vf->idev = idev;
	vf->vec = &idev->vectors[req.vector];
	atomic64_set(&vf->seen, atomic64_read(&vf->vec->count));
	kref_get(&idev->ref);
	fd = anon_inode_getfd("[ivshmem-vector]", &ivshmem_vector_fops, vf, flags);
	if (fd < 0) {
		kref_put(&idev->ref, ivshmem_dev_release);
		kfree(vf);
	}
	return fd;
}

/* Called with idev->lock held for reading and the device present. */
long ivshmem_ioctl_bind_eventfd(struct ivshmem_dev *idev, struct file *filp,
				void __user *arg)
{
	struct eventfd_ctx *ctx = NULL, *old = NULL;
	struct ivshmem_eventfd req;
	struct ivshmem_vector *v;
	long ret = 0;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!idev->doorbell)
		return -EOPNOTSUPP;
	if (req.reserved || req.vector >= idev->nvectors || req.fd < -1)
		return -EINVAL;
	v = &idev->vectors[req.vector];
	if (req.fd >= 0) {
		ctx = eventfd_ctx_fdget(req.fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);	/* -EBADF: no such fd; -EINVAL: not an eventfd */
	}
	spin_lock_irq(&v->lock);
	if (v->trigger && v->trigger_owner != filp) {
		ret = -EBUSY;
		old = ctx;
	} else {
		old = v->trigger;
		v->trigger = ctx;
		v->trigger_owner = ctx ? filp : NULL;
	}
	spin_unlock_irq(&v->lock);
	if (old)
		eventfd_ctx_put(old);
	return ret;
}

/* ---- in-kernel API ---------------------------------------------------------- */

int ivshmem_dev_set_callback(struct ivshmem_dev *idev, unsigned int vector,
			     ivshmem_vector_cb cb, void *data)
{
	struct ivshmem_vector *v;
	unsigned long flags;
	int ret = 0;

	down_read(&idev->lock);
	if (idev->gone) {
		ret = -ENODEV;
		goto out;
	}
	if (!idev->doorbell) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (vector >= idev->nvectors) {
		ret = -EINVAL;
		goto out;
	}
	v = &idev->vectors[vector];
	spin_lock_irqsave(&v->lock, flags);
	if (cb && v->cb) {
		ret = -EBUSY;
	} else {
		v->cb = cb;
		v->cb_data = cb ? data : NULL;
	}
	spin_unlock_irqrestore(&v->lock, flags);
out:
	up_read(&idev->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_dev_set_callback);
